"""``mlops-assets``: check specs, serve a model, replay traffic, show what is deployed.

User mistakes (a bad spec, a bad file) print one message and exit 2, without a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from mlops_assets.cli.init import add_init_command
from mlops_assets.cli.provenance import add_commands as add_provenance_commands
from mlops_assets.cli.serve import add_serve_command
from mlops_assets.cli.specs import PIPELINE_HELP, pipeline_spec, pipeline_specs
from mlops_assets.cli.trail import add_trail_commands
from mlops_assets.environment import pipelines_folder
from mlops_assets.errors import MlopsError
from mlops_assets.local.layout import LocalLayout
from mlops_assets.naming import CHAMPION
from mlops_assets.serving.endpoint_state import running_url, stop
from mlops_assets.spec import load_spec, load_specs


def _validate(args: argparse.Namespace) -> int:
    for path in args.paths:
        specs = load_specs(path) if Path(path).is_dir() else [(load_spec(path), Path(path))]
        for spec, spec_path in specs:
            from mlops_assets.model.training import make_estimator

            make_estimator(spec, str(spec_path))  # imports the estimator and checks its parameters
            print(f"ok: {spec_path} (pipeline {spec.name}, {len(spec.feature_columns)} features)")
    return 0


def _replay(args: argparse.Namespace) -> int:
    from mlops_assets.serving.traffic import replay

    spec, spec_path = pipeline_spec(args.spec)
    url = running_url(LocalLayout.from_env().endpoints, spec.name)
    if url is None:
        raise MlopsError(f"no endpoint is running for {spec.name}: materialize {spec.name}/deployed_endpoint first")
    shifts = dict(item.split("=", 1) for item in args.shift)
    sent = replay(
        spec,
        spec_path.parent,
        url,
        rows=args.rows,
        batch=args.batch,
        shifts={k: float(v) for k, v in shifts.items()},
        seed=args.seed,
        nulls=args.null,
    )
    print(f"sent {sent} rows to {url}" + (f" with {args.shift}" if args.shift else ""))
    return 0


def _rollback(args: argparse.Namespace) -> int:
    """A shortcut for the one way to roll back: ``deployed_endpoint`` materialized with ``rollback: true``,
    so the rollback is a Dagster run like any deployment. A rollback that cannot happen is refused first.

    The run is launched in this process against this Dagster instance (``DAGSTER_HOME``), on the environment's
    resources, as ``mlops-assets tick`` launches the sensors' runs."""
    import getpass

    import dagster as dg

    from mlops_assets.definitions.folder import pipeline_definitions
    from mlops_assets.governance.alias_history import read_alias_moves, rollback_target
    from mlops_assets.local.tick import QUIET
    from mlops_assets.naming import asset_keys
    from mlops_assets.resources import resources_from_env

    spec, spec_path = pipeline_spec(args.spec)
    resources = resources_from_env()
    current = resources.registry.by_alias(spec.name, CHAMPION)
    if current is None:
        raise MlopsError(f"{spec.name} has no champion to roll back")
    target = rollback_target(spec.name, read_alias_moves(resources.store, spec.name, CHAMPION), current.version)
    config = {"rollback": True, "approved_by": args.by or f"rollback by {getpass.getuser()}"}
    run_config = {**QUIET, "ops": {f"{spec.name}__deployed_endpoint": {"config": config}}}
    built = pipeline_definitions(spec, spec_path, sensor_factory=None)
    deployed = asset_keys(spec.name)["deployed_endpoint"]  # and its checks, as `dagster asset materialize` ran them
    with dg.DagsterInstance.get() as instance:
        result = dg.materialize(
            [a for a in [*built.assets, *built.checks] if isinstance(a, dg.AssetsDefinition)],
            selection=[deployed],
            resources=resources.by_key(),
            instance=instance,
            raise_on_error=False,
            run_config=run_config,
        )
    if not result.success:
        raise MlopsError(f"rollback of {spec.name} failed: {_run_failure(result)}")
    print(f"rolled back {spec.name} from v{current.version} to v{target}; `mlops-assets status` shows the champion")
    return 0


def _run_failure(result) -> str:
    """Why a failed in-process run failed: its first failed step's ``dg.Failure`` description, else that step's
    innermost error ("ValueError: ...")."""
    for event in result.all_events:
        if event.is_step_failure:
            failure = event.event_specific_data
            if failure.user_failure_data is not None and failure.user_failure_data.description:
                return failure.user_failure_data.description
            error = failure.error
            while error.cause is not None:
                error = error.cause
            return error.message.strip() or error.cls_name
    return "the run failed before any step"


def _stop(args: argparse.Namespace) -> int:
    endpoints = LocalLayout.from_env().endpoints
    for spec, _ in pipeline_specs(args.pipelines):
        stopped = stop(endpoints, spec.name)
        print(f"stopped the {spec.name} endpoint" if stopped else f"the {spec.name} endpoint was not running")
    return 0


def _status(args: argparse.Namespace) -> int:
    from mlops_assets.cli.status import describe
    from mlops_assets.resources import resources_from_env

    layout = LocalLayout.from_env()
    resources = resources_from_env()
    print(describe(pipeline_specs(args.pipelines), layout.endpoints, resources.store, resources.registry))
    return 0


def _rollout(args: argparse.Namespace) -> int:
    """The running rollout's arms side by side: what a person reads before ending an A/B test or a shadow."""
    from mlops_assets.data.snapshot import read_labels
    from mlops_assets.resources import resources_from_env
    from mlops_assets.rollout.arms import arms_table, rollout_arms

    spec, spec_path = pipeline_spec(args.spec)
    resources = resources_from_env()
    deployer, registry = resources.deployer, resources.registry
    if deployer.running_url(spec.name) is None:
        raise MlopsError(f"no endpoint is running for {spec.name}")
    status = deployer.rollout_status(spec.name)
    rollout = status.rollout
    if rollout is None:
        print(f"{spec.name}: v{status.model_version} serves alone, no rollout is running")
        return 0
    model = registry.load(spec.name, str(status.model_version))
    arms = rollout_arms(spec, resources.store, rollout.started, None, read_labels(spec, spec_path.parent), model)
    print(
        f"{spec.name}: {rollout.mode} of v{rollout.challenger_version} against v{status.model_version} "
        f"since {rollout.started_at}\n{arms_table(arms)}"
    )
    return 0


def _tick(args: argparse.Namespace) -> int:
    """The sensors ticked through Dagster's API against this Dagster instance (``DAGSTER_HOME``), their runs
    materialized here, round after round until a round asks for nothing: the loop without the daemon."""
    import dagster as dg

    from mlops_assets.definitions.folder import build_definitions
    from mlops_assets.local.tick import SensorDriver
    from mlops_assets.resources import resources_from_env

    layout = LocalLayout.from_env()
    resources = resources_from_env()
    defs = build_definitions(args.pipelines, resources)  # with the framework's sensors
    names = [s.name for s in defs.sensors if not args.pipeline or s.name.rsplit("_", 2)[0] in args.pipeline]
    with dg.DagsterInstance.get() as instance:
        driver = SensorDriver(defs, instance, resources.by_key(), layout.home / "sensor_cursors.json")
        for round_ in range(1, args.rounds + 1):
            launched = driver.step(names)
            for item in launched:
                print(f"round {round_}: {item.sensor} -> {item.summary()}")
            if not launched:
                print(f"round {round_}: no sensor asked for a run; the loop is quiet")
                return 0
    print(f"stopped after {args.rounds} rounds with the sensors still asking for runs")
    return 0


def _instance(args: argparse.Namespace) -> int:
    from mlops_assets.local.instance import write_instance_settings

    home = args.home or os.environ.get("DAGSTER_HOME")
    if not home:
        raise MlopsError("mlops-assets instance: set DAGSTER_HOME or pass --home (the folder of dagster.yaml)")
    path = write_instance_settings(Path(home))
    print(f"wrote the loop's run-queue limit (one automatic retraining per pipeline) to {path}")
    return 0


def _spec_reference(args: argparse.Namespace) -> int:
    from mlops_assets.spec.reference import render, update_reference

    if args.update:
        Path(args.update).write_text(update_reference(Path(args.update).read_text()))
    else:
        print(render())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlops-assets", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    validate = commands.add_parser("validate", help="check specs (files or folders) without running anything")
    validate.add_argument("paths", nargs="+")
    validate.set_defaults(run=_validate)

    add_init_command(commands)  # init: draft a spec from a data file

    add_serve_command(commands)  # serve: the champion behind the MLflow scoring protocol

    replay = commands.add_parser("replay", help="send rows of the pipeline's own data to its endpoint")
    replay.add_argument("spec", help=PIPELINE_HELP)
    replay.add_argument("--rows", type=int, default=200)
    replay.add_argument("--batch", type=int, default=1, help="rows per request")
    replay.add_argument(
        "--shift",
        action="append",
        default=[],
        metavar="COLUMN=FACTOR",
        help="multiply a numeric column, to simulate drift (repeatable)",
    )
    replay.add_argument(
        "--null", action="append", default=[], metavar="COLUMN", help="send a column empty, to simulate a broken feed"
    )
    replay.add_argument("--seed", type=int, default=0)
    replay.set_defaults(run=_replay)

    rollback = commands.add_parser(
        "rollback", help="move champion back to the last different champion in its alias history"
    )
    rollback.add_argument("spec", help=PIPELINE_HELP)
    rollback.add_argument("--by", help="who decides (recorded on the model versions)")
    rollback.set_defaults(run=_rollback)

    add_trail_commands(commands, PIPELINE_HELP)  # approve, audit, history

    for name, run, text in (("rollout", _rollout, "the running canary, shadow or ab rollout's arms side by side"),):
        command = commands.add_parser(name, help=text)
        command.add_argument("spec", help=PIPELINE_HELP)
        command.set_defaults(run=run)

    for name, run, text in (
        ("status", _status, "champion, metrics and latest drift per pipeline"),
        ("stop", _stop, "stop the local endpoints"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument(
            "pipelines",
            nargs="*",
            help="pipeline names, spec files or folders of specs (default: every spec in MLOPS_PIPELINES, "
            "default pipelines/)",
        )
        command.set_defaults(run=run)

    tick = commands.add_parser("tick", help="tick the sensors and run what they ask for, until the loop is quiet")
    tick.add_argument("pipeline", nargs="*", help="pipeline names (default: all)")
    tick.add_argument("--pipelines", default=str(pipelines_folder()), help="specs folder")
    tick.add_argument("--rounds", type=int, default=10, help="most rounds of ticks")
    tick.set_defaults(run=_tick)

    instance = commands.add_parser(
        "instance", help="write the loop's settings (one automatic retraining per pipeline) into dagster.yaml"
    )
    instance.add_argument("--home", help="the Dagster instance's folder (default: DAGSTER_HOME)")
    instance.set_defaults(run=_instance)

    add_provenance_commands(commands)  # lineage, reproduce

    reference = commands.add_parser("spec-reference", help="print the spec reference (Markdown)")
    reference.add_argument(
        "--update",
        nargs="?",
        const="docs/spec-reference.md",
        metavar="FILE",
        help="rewrite the '## Spec reference' section of FILE (default: docs/spec-reference.md)",
    )
    reference.set_defaults(run=_spec_reference)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except MlopsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
