"""``mlops-assets lineage`` and ``mlops-assets reproduce``: where a version came from, and whether it can be
made again from that.

``reproduce`` exits 0 when the metrics match (``governance/reproduce.py`` says how closely), 1 when they do not or
when the version's stored data are missing or altered (nothing is trained then), 2 on a usage mistake.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

PIPELINE_HELP = "the pipeline's name (or a spec file naming it); read from the registry, not from its spec on disk"


def add_commands(commands) -> None:
    """The two subcommands, on ``mlops-assets``' subparsers."""
    lineage = commands.add_parser("lineage", help="a version's provenance as a tree, from source files to endpoint")
    lineage.add_argument("pipeline", help=PIPELINE_HELP)
    lineage.add_argument("--version", help="the model version (default: the champion)")
    lineage.add_argument("--json", action="store_true", help="print one JSON document")
    lineage.set_defaults(run=_lineage)

    reproduce = commands.add_parser(
        "reproduce", help="retrain a version from its recorded data, spec and seed; compare the metrics"
    )
    reproduce.add_argument("pipeline", help=PIPELINE_HELP)
    reproduce.add_argument("--version", required=True, help="the model version")
    reproduce.set_defaults(run=_reproduce)


def pipeline_name(value: str) -> str:
    """A pipeline's name, or the name in the spec file ``value`` (read as YAML only: it may no longer validate)."""
    if not Path(value).is_file():
        return value
    import yaml

    raw = yaml.safe_load(Path(value).read_text()) or {}
    return str(raw.get("attributes", raw).get("name", value))


def _stores():
    from mlops_assets.model.registry import MlflowRegistryClient
    from mlops_assets.resources import resources_from_env

    resources = resources_from_env()
    return resources, MlflowRegistryClient(resources.registry.tracking_uri())


def _lineage(args: argparse.Namespace) -> int:
    from mlops_assets.governance.lineage import lineage, render

    name = pipeline_name(args.pipeline)
    resources, client = _stores()
    instance = None
    if os.environ.get("DAGSTER_HOME"):
        import dagster as dg

        instance = dg.DagsterInstance.get()
    try:
        tree = lineage(name, args.version, resources.store, client, instance, resources.deployer.running_url(name))
    finally:
        if instance is not None:
            instance.dispose()
    print(json.dumps(tree, indent=2) if args.json else render(tree))
    return 0


def _reproduce(args: argparse.Namespace) -> int:
    from mlops_assets.governance.lineage import find_version
    from mlops_assets.governance.reproduce import ReproductionError, metrics_table, reproduce

    name = pipeline_name(args.pipeline)
    resources, client = _stores()
    find_version(client, name, args.version)
    try:
        reproduction = reproduce(name, args.version, resources.store, client)
    except ReproductionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for line in reproduction.checked:
        print(f"checked {line}")
    if reproduction.environment_differences:
        print(
            f"warning: the environment differs from v{args.version}'s "
            f"({len(reproduction.environment_differences)} packages):",
            file=sys.stderr,
        )
        for line in reproduction.environment_differences:
            print(f"  {line}", file=sys.stderr)
    print(metrics_table(reproduction))
    rule = "exactly" if reproduction.tolerance == 0 else f"within {reproduction.tolerance:g}"
    if reproduction.reproduced:
        print(f"{name} v{args.version} reproduced: every metric matches {rule} (seed {reproduction.seed})")
        return 0
    print(f"{name} v{args.version} NOT reproduced: the metrics marked DIFFERS do not match {rule}", file=sys.stderr)
    return 1
