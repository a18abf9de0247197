"""The model card: one page that says what a model version is for, where it came from and how it did.

``card_figures`` computes what the card shows beyond the holdout comparison (intervals, slices, fairness,
permutation importance) from the challenger and the fixed holdout; ``model_card`` writes the Markdown shown in
the Dagster UI, and ``card_html`` renders that Markdown as a standalone HTML page for the artifact store.
Every value that comes from data is escaped in the HTML, so a group named ``<script>`` stays text.
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mlops_assets.evaluation.fairness import GroupFigure, fairness_figures, group_labels, slice_metrics
from mlops_assets.evaluation.importance import N_REPEATS, Importance, model_score, permutation_importance
from mlops_assets.records import EvaluationReport

if TYPE_CHECKING:
    from mlops_assets.spec import PipelineSpec

CONFIDENCE = 0.95


@dataclass(frozen=True)
class CardFigures:
    """What the card reports of the challenger on the fixed holdout, beside the holdout comparison."""

    rows: int
    target_summary: dict[str, float]  # rows per class, or mean, std, min and max of a numeric target
    intervals: dict[str, tuple[float, float, float]]  # metric -> (value, low, high)
    slices: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # column -> group -> metrics
    fairness: list[GroupFigure] = field(default_factory=list)
    importance: list[Importance] = field(default_factory=list)


def card_figures(spec: PipelineSpec, model, holdout: pd.DataFrame) -> CardFigures:
    """The challenger's figures on the fixed holdout: intervals of every metric, per-slice metrics, fairness
    figures per sensitive column and the permutation importance of every input column."""
    from mlops_assets.evaluation.confidence import metric_interval
    from mlops_assets.evaluation.holdouts import score

    scored = score(model, holdout, spec.target)
    y, pred, proba = scored.y_true, scored.y_pred, scored.y_score
    intervals = {m: metric_interval(m, y, pred, proba, confidence=CONFIDENCE) for m in spec.metrics}
    slices = {c: slice_metrics(spec.metrics, y, pred, proba, group_labels(holdout[c])) for c in spec.evaluation.slices}
    fairness = [
        figure
        for column in spec.evaluation.fairness.sensitive
        for figure in fairness_figures(spec.task, column, y, pred, group_labels(holdout[column]), model.classes)
    ]
    primary = spec.primary_metric
    importance = permutation_importance(
        model_score(model, spec.target, primary), holdout, list(model.input_columns), primary, seed=spec.split.seed
    )
    return CardFigures(
        len(holdout), _target_summary(holdout[spec.target], model.classes), intervals, slices, fairness, importance
    )


def _target_summary(target: pd.Series, classes: list | None) -> dict[str, float]:
    if classes is not None:
        counts = target.astype(str).value_counts()
        return {str(c): int(counts.get(str(c), 0)) for c in classes}
    values = target.to_numpy(dtype=float)
    return {
        "mean": float(values.mean()),
        "std": float(values.std()),
        "min": float(values.min()),
        "max": float(values.max()),
    }


def model_card(
    spec: PipelineSpec,
    report: EvaluationReport,
    tags: dict[str, str],
    holdouts: str = "",
    figures: CardFigures | None = None,
) -> str:
    """``holdouts``: every holdout the version was judged on, side by side (``holdouts.Judgement.markdown``);
    ``figures``: the challenger's intervals, slices, fairness and importance (``card_figures``)."""
    model = report.model
    champion = report.champion_version or "none"
    intervals = figures.intervals if figures else {}
    rows = "\n".join(
        f"| {name} | {value:.4f} | {_interval(intervals.get(name))} | "
        f"{'' if report.champion_metrics is None else format(report.champion_metrics[name], '.4f')} |"
        for name, value in report.metrics.items()
    )
    gate = "\n".join(f"- {_line(reason)}" for reason in report.gate_reasons) or "- no conditions declared"
    text = spec.evaluation.card
    return f"""# Model card: {spec.name} version {model.version}

{spec.description or ""}

## Intended use

{text.intended_use or "not stated in the spec (evaluation.card.intended_use)"}

## Limitations

{text.limitations or "not stated in the spec (evaluation.card.limitations)"}

## Provenance

- Task: {spec.task}, target `{spec.target}`
- Estimator: {tags.get("estimator", "?")} ({spec.model.estimator or "torch MLP"}), trained on {tags.get("device", "?")}
- Dataset: content hash `{model.features.dataset_hash}`, features version `{model.features.version}`
- Trained on: {model.features.rows_by_origin or "?"} rows (feedback `{model.features.feedback_hash or "none"}`)
- Adapted to: {model.features.adaptation or "nothing (no drift answered by importance weights)"}
- Spec hash: `{tags.get("spec_hash", "?")}` (file `{tags.get("spec_file_hash", "?")}`, kept with the run)
- Code: `{tags.get("git_sha", "?")}` (package {tags.get("package_version", "?")}); environment digest
  `{tags.get("environment_digest", "?")}` (its pip freeze is kept with the run)
- Seed: {_line(tags.get("seed", "?"))}; rows quarantined before training: {tags.get("quarantined_rows", "?")}
- Trigger: {model.trigger}; MLflow run `{model.run_id}`; Dagster run `{tags.get("dagster_run_id", "?")}`
- Approval: {_line(tags.get("approved_by") or "not yet approved")}

{_data_section(figures)}
## Holdout metrics (challenger v{model.version} vs champion {champion})

| metric | challenger | {CONFIDENCE:.0%} CI | champion |
|---|---|---|---|
{rows}

## Every holdout (challenger vs champion)

{holdouts or "fixed holdout only"}
{_figure_sections(spec, figures) if figures else ""}
## Gate: {"passed" if report.gate_passed else "FAILED"}

{gate}
"""


def _data_section(figures: CardFigures | None) -> str:
    if figures is None:
        return ""
    summary = ", ".join(f"{_line(k)}: {_number(v)}" for k, v in figures.target_summary.items())
    return f"## Data\n\n- Fixed holdout: {figures.rows} rows\n- Target on the holdout: {summary}\n"


def _figure_sections(spec: PipelineSpec, figures: CardFigures) -> str:
    sections = []
    for column, groups in figures.slices.items():
        sections.append(f"## Slices by `{_line(column)}` (challenger, fixed holdout)\n\n" + _slice_table(groups))
    if figures.fairness:
        limits = spec.evaluation.fairness.limits.declared()
        lines = ["| sensitive column | figure | value | limit | per group |", "|---|---|---|---|---|"]
        for f in figures.fairness:
            groups = "; ".join(
                f"{_cell(g)}: " + ", ".join(f"{k} {_number(v)}" for k, v in values.items())
                for g, values in f.by_group.items()
            )
            positive = "" if f.target_class is None else f" (positive class {_cell(f.target_class)})"
            limit = limits.get(f.name)
            lines.append(
                f"| {_cell(f.column)} | {f.name}{positive} | {_number(f.value)} | "
                f"{'none' if limit is None else limit} | {groups} |"
            )
        sections.append("## Fairness (challenger, fixed holdout)\n\n" + "\n".join(lines))
    if figures.importance:
        lines = [f"| input column | {spec.primary_metric} worsening | std |", "|---|---|---|"]
        lines += [f"| {_cell(i.column)} | {_number(i.mean)} | {_number(i.std)} |" for i in figures.importance]
        sections.append(
            "## Permutation importance (challenger, fixed holdout)\n\nHow much the primary metric worsens when "
            f"a column's values are shuffled among the rows ({N_REPEATS} seeded shuffles).\n\n" + "\n".join(lines)
        )
    return "".join(f"\n{s}\n" for s in sections)


def _slice_table(groups: dict[str, dict[str, float]]) -> str:
    names = list(next(iter(groups.values()))) if groups else ["rows"]
    lines = ["| group | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    lines += [f"| {_cell(g)} | " + " | ".join(_number(v[n]) for n in names) + " |" for g, v in groups.items()]
    return "\n".join(lines)


def _interval(interval: tuple[float, float, float] | None) -> str:
    return "" if interval is None else f"{_number(interval[1])} to {_number(interval[2])}"


def _number(value) -> str:
    if isinstance(value, (int, np.integer)):
        return str(value)
    return "n/a" if value is None or math.isnan(value) else f"{value:.4f}"


def _line(text) -> str:
    """A value from data on one line, so it cannot start a heading, a list or a table of its own."""
    return str(text).replace("\r", " ").replace("\n", " ")


def _cell(text) -> str:
    """A value from data as one Markdown table cell: on one line, its pipes escaped."""
    return _line(text).replace("|", "\\|")


_CELL_SPLIT = re.compile(r"(?<!\\)\|")


def card_html(markdown: str, title: str) -> str:
    """The card's Markdown (headings, lists, tables, paragraphs, `code`) as a standalone HTML page.

    Each line is escaped before any markup is added, so nothing from data becomes markup."""
    body, table, items = [], [], []

    def flush():
        if items:
            body.append("<ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>")
            items.clear()
        if table:
            head, *rows = table
            body.append(
                "<table><thead><tr>"
                + "".join(f"<th>{c}</th>" for c in head)
                + "</tr></thead><tbody>"
                + "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
                + "</tbody></table>"
            )
            table.clear()

    for line in markdown.splitlines():
        stripped = line.strip()
        if stripped.startswith("|"):
            if items:
                flush()
            cells = [_inline(c.strip().replace("\\|", "|")) for c in _cells(stripped)]
            if not all(re.fullmatch(r":?-+:?", c) for c in cells):  # the separator row
                table.append(cells)
            continue
        if stripped.startswith("- "):
            if table:
                flush()
            items.append(_inline(stripped[2:]))
            continue
        flush()
        heading = re.match(r"(#{1,6}) (.*)", stripped)
        if heading:
            level = len(heading.group(1))
            body.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
        elif stripped:
            body.append(f"<p>{_inline(stripped)}</p>")
    flush()
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>\n<style>{_STYLE}'
        "</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def _cells(row: str) -> list[str]:
    cells = _CELL_SPLIT.split(row)
    return cells[1:-1] if row.endswith("|") and not row.endswith("\\|") else cells[1:]


def _inline(text: str) -> str:
    """Escaped text; `code` spans become <code> (their content escaped too, markup cannot open there)."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


_STYLE = (
    "body{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.4}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left}"
    "code{background:#f4f4f4;padding:0 .2em}"
)
