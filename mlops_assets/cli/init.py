"""``mlops-assets init``: draft a spec from a CSV or parquet file (``data.draft``), write it where the code
location finds it, and say what to run next."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from mlops_assets.data.draft import TASK_CHOICES, draft_file, pipeline_name
from mlops_assets.environment import PIPELINES, pipelines_folder
from mlops_assets.errors import MlopsError
from mlops_assets.spec.data_roots import DATA_ROOTS_ENV, outside_roots


def add_init_command(commands: argparse._SubParsersAction) -> None:
    init = commands.add_parser("init", help="draft a spec from a CSV or parquet file")
    init.add_argument("data", type=Path, help="the CSV or parquet file the pipeline trains on")
    init.add_argument("--target", required=True, help="the column to predict")
    init.add_argument("--id", dest="id_column", help="a column naming each row (unique; never a feature)")
    init.add_argument(
        "--task",
        choices=TASK_CHOICES,
        help="default: inferred from the target (strings or a few whole numbers: classification, else regression)",
    )
    init.add_argument("--name", help="the pipeline's name (default: from the file's name)")
    init.add_argument(
        "--output", type=Path, help=f"the spec file (default: <{PIPELINES}, default pipelines>/<name>.yaml)"
    )
    init.add_argument("--force", action="store_true", help="overwrite the spec file")
    init.set_defaults(run=_init)


def _init(args: argparse.Namespace) -> int:
    name = args.name or pipeline_name(args.data)
    if name is None:
        raise MlopsError(f"no pipeline name in {args.data.name!r}: give one with --name (letters, digits, _)")
    folder = pipelines_folder()
    output = args.output or folder / f"{name}.yaml"
    if output.exists() and not args.force:
        raise MlopsError(f"{output} exists: choose another --output or --name, or overwrite it with --force")
    if args.data.exists() and outside_roots(args.data, output.parent):
        raise MlopsError(
            f"{args.data} lies outside {output.parent}/, the spec's folder, where a spec reads its data: move it "
            f"there (as pipelines/data/<name>/ holds the bundled data), or list its folder in {DATA_ROOTS_ENV}"
        )
    draft = draft_file(args.data, output, name=name, target=args.target, id_column=args.id_column, task=args.task)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(draft.heading() + draft.to_yaml())
    print(f"wrote {output}: {draft.summary}")
    print("next: read its comments, then")
    for line in next_commands(output, name, folder):
        print(f"  {line}")
    return 0


def next_commands(output: Path, name: str, folder: Path) -> list[str]:
    """How to check the spec and materialize its pipeline, as the Makefile does without make: the repository's
    code location (definitions.py) loads every spec of ``MLOPS_PIPELINES``, recorded in a Dagster instance."""
    elsewhere = output.parent.resolve() != folder.resolve()
    pipelines = f"{PIPELINES}={shlex.quote(str(output.parent))} " if elsewhere else ""
    return [
        f"mlops-assets validate {shlex.quote(str(output))}",
        "mlops-assets instance --home .dagster_home",
        f"{pipelines}DAGSTER_HOME=$PWD/.dagster_home dg launch -f definitions.py --assets 'group:{name}'",
    ]
