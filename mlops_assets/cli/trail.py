"""``mlops-assets approve``, ``audit`` and ``history``: a person's approval, the audit trail and what it shows.

Each reads the pipeline's audit trail (``governance.audit``) in the artifact store of ``resources_from_env``;
``audit verify`` checks it also against the anchors the Dagster instance at ``DAGSTER_HOME`` keeps
(``governance.anchors``). Exit codes: 0 done; 1 ``audit verify`` found a broken, forged or cut trail; 2 a
refused request (an unknown pipeline or version, a version that did not pass its gate, a bad time), with
nothing written.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from mlops_assets.cli.specs import pipeline_spec, pipeline_specs
from mlops_assets.errors import MlopsError
from mlops_assets.naming import CHALLENGER, CHAMPION, TrailEvent

VERIFY = "verify"  # `audit verify [PIPELINE ...]`: a pipeline cannot be named so


def _approve(args: argparse.Namespace) -> int:
    """Record a person's approval of a version that exists and passed its gate; refuse anything else."""
    from mlops_assets.governance.audit import append_event, verify_trail
    from mlops_assets.resources import resources_from_env

    spec, _ = pipeline_spec(args.spec)
    resources = resources_from_env()
    store, registry = resources.store, resources.registry
    try:
        version = registry.get(spec.name, args.version)
    except Exception as exc:  # MLflow's own error, or the fake's LookupError
        raise MlopsError(
            f"{spec.name} has no version {args.version} in the registry ({exc}); nothing approved"
        ) from None
    gate = version.tags.get("gate")
    if gate != "passed":
        state = "failed its gate" if gate == "failed" else "has not been through the gate (evaluation_report)"
        raise MlopsError(f"{spec.name} v{args.version} {state}; only a gated version can be approved: nothing approved")
    checked = verify_trail(store, spec.name)
    if not checked.ok:
        raise MlopsError(f"the audit trail is broken, so nothing is added to it: {checked.problem}")
    record = {"model_version": args.version, "approved_by": args.by, "reason": args.reason}
    key = append_event(store, spec.name, TrailEvent.approval, record)
    print(
        f"approved {spec.name} v{args.version} by {args.by} ({store.uri(key)}); the next materialization of "
        f"{spec.name}/deployed_endpoint promotes it"
    )
    return 0


def _audit(args: argparse.Namespace) -> int:
    """``audit PIPELINE`` prints the trail; ``audit verify [PIPELINE ...]`` checks its chain."""
    from mlops_assets.governance.audit import describe_event, read_events, read_trail, verify_trail
    from mlops_assets.resources import resources_from_env

    store = resources_from_env().store
    if args.words[0] == VERIFY:
        specs = pipeline_specs(args.words[1:])
        with _anchor_reader() as anchors_of:
            results = [verify_trail(store, spec.name, anchors_of(spec.name)) for spec, _ in specs]
        print("\n".join(result.describe() for result in results))
        return 0 if all(result.ok for result in results) else 1
    if len(args.words) > 1:
        raise MlopsError(f"audit takes one pipeline, or `{VERIFY}` and pipelines: got {' '.join(args.words)}")
    spec, _ = pipeline_spec(args.words[0])
    kinds = (TrailEvent.decision, TrailEvent.alias)
    earlier = [{**e, "kind": kind} for kind in kinds for e in read_events(store, spec.name, kind) if "seq" not in e]
    events = sorted(earlier, key=lambda e: e["time"]) + read_trail(store, spec.name)
    print("\n".join(describe_event(e) for e in events) or f"nothing recorded for {spec.name}")
    return 0


@contextmanager
def _anchor_reader() -> Iterator[Callable[[str], list | None]]:
    """The Dagster instance at ``DAGSTER_HOME``, open while verifying: a function from a pipeline to the anchors
    the instance keeps of its trail, or to ``None`` where there is no instance to read."""
    from mlops_assets.governance.anchors import read_anchors

    home = os.environ.get("DAGSTER_HOME")
    if not home or not Path(home).is_dir():
        yield lambda pipeline: None
        return
    import dagster as dg

    instance = dg.DagsterInstance.get()
    try:
        yield lambda pipeline: read_anchors(instance, pipeline)
    finally:
        instance.dispose()


def _history(args: argparse.Namespace) -> int:
    """Which version held champion and challenger when; with ``--at``, who held champion then and who approved."""
    from mlops_assets.governance.alias_history import alias_spans, holder_at, read_alias_moves
    from mlops_assets.governance.audit import is_keyed, read_events
    from mlops_assets.resources import resources_from_env

    spec, _ = pipeline_spec(args.spec)
    store = resources_from_env().store
    moves = {alias: read_alias_moves(store, spec.name, alias) for alias in (CHAMPION, CHALLENGER)}
    if args.at is None:
        lines = [f"{'alias':<10}  {'version':>7}  {'since':<29}  {'until':<29}  why"]
        for alias, alias_moves in moves.items():
            for span in alias_spans(alias_moves):
                until = span.until or "now"
                why = f"{span.move.action} by {span.move.by}"
                lines.append(f"{alias:<10}  {'v' + span.version:>7}  {span.since:<29}  {until:<29}  {why}")
        print("\n".join(lines) if len(lines) > 1 else f"no alias moves recorded for {spec.name}")
        return 0
    at = _utc(args.at)
    span = holder_at(moves[CHAMPION], at)
    if span is None:
        print(f"{spec.name}: no champion at {at.isoformat()}")
        return 0
    approvals = [
        a
        for a in read_events(store, spec.name, TrailEvent.approval)
        if a["model_version"] == span.version and a["time"] <= span.since
    ]
    approval = (
        f"approved by {approvals[-1]['approved_by']} at {approvals[-1]['time']}: {approvals[-1]['reason']}"
        + ("" if is_keyed(approvals[-1]) else " (not under the audit key: unverified)")
        if approvals
        else "no approval recorded (promoted by the gate)"
    )
    challenger = holder_at(moves[CHALLENGER], at)
    print(
        f"{spec.name} at {at.isoformat()}: champion v{span.version} since {span.since} "
        f"({span.move.action} by {span.move.by}); {approval}"
        + (f"; challenger v{challenger.version}" if challenger else "")
    )
    return 0


def _utc(text: str) -> dt.datetime:
    try:
        at = dt.datetime.fromisoformat(text)
    except ValueError:
        raise MlopsError(f"--at {text!r} is not an ISO time (e.g. 2025-01-31T12:00:00+00:00)") from None
    return at.replace(tzinfo=dt.UTC) if at.tzinfo is None else at


def add_trail_commands(commands, pipeline_help: str) -> None:
    """Register ``approve``, ``audit`` and ``history`` on the CLI's subparsers."""
    approve = commands.add_parser("approve", help="approve a gated version for promotion (recorded in the trail)")
    approve.add_argument("spec", help=pipeline_help)
    approve.add_argument("--version", required=True, help="the model version approved")
    approve.add_argument("--by", required=True, help="who approves")
    approve.add_argument("--reason", required=True, help="why")
    approve.set_defaults(run=_approve)

    audit = commands.add_parser(
        "audit", help="a pipeline's audit trail, oldest first; `audit verify [PIPELINE ...]` checks its hash chain"
    )
    audit.add_argument(
        "words",
        nargs="+",
        metavar="PIPELINE",
        help=f"{pipeline_help}; or `{VERIFY}` and pipelines (none: every spec in MLOPS_PIPELINES) to check them",
    )
    audit.set_defaults(run=_audit)

    history = commands.add_parser("history", help="which version held champion and challenger when")
    history.add_argument("spec", help=pipeline_help)
    history.add_argument("--at", help="an ISO time (UTC unless it says): the champion then, and who approved it")
    history.set_defaults(run=_history)
