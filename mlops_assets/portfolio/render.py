"""The portfolio's rows (``portfolio.gather``) as Markdown, shown in the Dagster UI, and as an HTML page to
share, every value escaped; a "needs attention" list first, from the cells whose tone is bad."""

from __future__ import annotations

import datetime as dt
import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

from mlops_assets.naming import DriftStatus
from mlops_assets.portfolio.gather import Check, Drift, Performance, PortfolioRow, Training

OK, BAD, NEUTRAL = "ok", "bad", "neutral"  # a cell's tone: the HTML colours it, attention lists the bad ones
COLUMNS = (
    "pipeline",
    "champion",
    "serving for",
    "last training",
    "gate",
    "drift",
    "realised",
    "estimated",
    "SLO",
    "approval",
    "endpoint",
    "schema",
)


@dataclass(frozen=True)
class Cell:
    text: str
    tone: str = NEUTRAL


def row_cells(row: PortfolioRow, now: dt.datetime) -> list[Cell]:
    """The row as the table shows it, one cell per column of ``COLUMNS``."""
    if row.problems:
        return [Cell(row.pipeline), Cell("; ".join(row.problems), BAD)] + [Cell("-")] * (len(COLUMNS) - 2)
    return [
        Cell(row.pipeline),
        Cell(f"v{row.champion}" if row.champion else "none"),
        Cell(age(now - row.champion_since) if row.champion_since else "-"),
        _training_cell(row.training, now),
        _gate_cell(row),
        _drift_cell(row.drift, now),
        _performance_cell(row.drift.realised if row.drift else None),
        _performance_cell(row.drift.estimated if row.drift else None),
        _slo_cell(row.slo),
        Cell(f"v{row.awaiting_approval} waits", BAD) if row.awaiting_approval else Cell("-"),
        _endpoint_cell(row),
        _schema_cell(row),
    ]


def _training_cell(training: Training | None, now: dt.datetime) -> Cell:
    if training is None:
        return Cell("none recorded")
    return Cell(f"v{training.version}, {age(now - training.at)} ago ({training.trigger})")


def _gate_cell(row: PortfolioRow) -> Cell:
    gate = row.gate
    if gate is None:
        return Cell("-")
    if gate.passed:
        return Cell(f"v{gate.version} passed", OK)
    why = "; ".join(gate.reasons)
    if row.champion is None:  # nothing serves: that needs a person
        return Cell(f"v{gate.version} FAILED, no champion: {why}", BAD)
    # a refused challenger is the loop's decision, not an incident: the champion serves on, and here is why
    return Cell(f"v{gate.version} not promoted, champion v{row.champion} kept: {why}", NEUTRAL)


def _drift_cell(drift: Drift | None, now: dt.datetime) -> Cell:
    if drift is None:
        return Cell("no report")
    when = f", {age(now - drift.at)} ago" if drift.at else ""
    features = f" ({', '.join(drift.drifted_features)})" if drift.drifted_features else ""
    tone = {DriftStatus.no_drift: OK, DriftStatus.drifted: BAD, DriftStatus.waiting_for_labels: BAD}
    return Cell(f"{drift.status}{features}{when}", tone.get(drift.status, NEUTRAL))


def _performance_cell(found: Performance | None) -> Cell:
    if found is None:
        return Cell("-")
    text = f"{found.metric} {_number(found.value)} [{_number(found.low)}, {_number(found.high)}], floor {found.floor:g}"
    return Cell(text + " DECAYED", BAD) if found.decayed else Cell(text, OK)


def _slo_cell(checks: list[Check] | None) -> Cell:
    if checks is None:
        return Cell("no SLO")
    if all(check.passed is None for check in checks):
        return Cell("not checked yet")
    words = {True: "ok", False: "FAILED", None: "not checked yet"}
    text = ", ".join(f"{check.name} {words[check.passed]}" for check in checks)
    return Cell(text, BAD if any(check.passed is False for check in checks) else OK)


def _endpoint_cell(row: PortfolioRow) -> Cell:
    endpoint = row.endpoint
    if endpoint.up:
        return Cell(f"up {endpoint.url}", OK)
    if endpoint.up is None:
        return Cell(endpoint.note, BAD if row.champion else NEUTRAL)
    return Cell("DOWN", BAD) if row.champion else Cell("not deployed")


def _schema_cell(row: PortfolioRow) -> Cell:
    """The schema-break check: whether the endpoint rejects more scoring requests than it may."""
    check = row.schema_break
    if check is None or check.passed is None:
        return Cell("not checked yet" if row.champion else "-")
    return Cell("ok", OK) if check.passed else Cell(f"FAILED: requests rejected ({check.name})", BAD)


def attention(rows: Sequence[PortfolioRow], now: dt.datetime) -> list[str]:
    """One line per pipeline with something a person should look at: every bad cell of its row."""
    lines = []
    for row in rows:
        cells = row_cells(row, now)
        bad = [f"{column}: {cell.text}" for column, cell in zip(COLUMNS, cells, strict=True) if cell.tone == BAD]
        if bad:
            lines.append(f"{row.pipeline}: " + "; ".join(bad))
    return lines


def summary(rows: Sequence[PortfolioRow], now: dt.datetime) -> str:
    serving = sum(1 for row in rows if row.champion)
    return (
        f"{len(rows)} pipeline(s), {serving} with a champion, {len(attention(rows, now))} needing attention; "
        f"read {now.isoformat(timespec='seconds')}"
    )


def render_markdown(rows: Sequence[PortfolioRow], now: dt.datetime) -> str:
    """The portfolio as Markdown: a summary, what needs attention, and the table. Cells are text from data:
    their pipes and line breaks are escaped, so none can break the table."""
    needs = attention(rows, now)
    lines = ["# Portfolio", "", summary(rows, now), "", "## Needs attention", ""]
    lines += [f"- {_md(line)}" for line in needs] or ["Nothing."]
    lines += ["", "## Models", "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_md(cell.text) for cell in row_cells(row, now)) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def render_html(rows: Sequence[PortfolioRow], now: dt.datetime) -> str:
    """The portfolio as a standalone HTML page, cells coloured by tone; every value from data is escaped."""
    needs = attention(rows, now)
    items = "".join(f"<li>{html.escape(line)}</li>" for line in needs)
    head = "".join(f"<th>{html.escape(column)}</th>" for column in COLUMNS)
    body = "".join(
        "<tr>"
        + "".join(f'<td class="{cell.tone}">{html.escape(cell.text)}</td>' for cell in row_cells(row, now))
        + "</tr>"
        for row in rows
    )
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Portfolio</title>\n'
        f"<style>{_STYLE}</style></head>\n<body>\n<h1>Portfolio</h1>\n<p>{html.escape(summary(rows, now))}</p>\n"
        f"<h2>Needs attention</h2>\n{f'<ul>{items}</ul>' if items else '<p>Nothing.</p>'}\n"
        f"<h2>Models</h2>\n<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>\n</body></html>\n"
    )


_STYLE = (
    "body{font-family:sans-serif;margin:2em;line-height:1.4}table{border-collapse:collapse}"
    "th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}th{background:#f3f3f3}"
    "td.ok{background:#eef8ee}td.bad{background:#fdecea;font-weight:bold}"
)


def _md(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _number(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.3f}"


def age(elapsed: dt.timedelta) -> str:
    """A duration as a person reads it at a glance: its two largest units."""
    seconds = max(0, int(elapsed.total_seconds()))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m" if minutes else f"{seconds}s"
