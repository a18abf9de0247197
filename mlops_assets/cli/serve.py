"""``mlops-assets serve``: a pipeline's champion behind the MLflow scoring protocol, in one process or in
``--workers`` processes sharing the port; the address, pid and admin token go to the endpoint's state file."""

from __future__ import annotations

import argparse
import json
import os
import signal
from pathlib import Path

from mlops_assets.cli.specs import PIPELINE_HELP, pipeline_spec
from mlops_assets.data.locations import log_prefix, shadow_log_prefix
from mlops_assets.environment import Settings
from mlops_assets.errors import MlopsError
from mlops_assets.local.layout import LocalLayout
from mlops_assets.serving.endpoint_state import endpoint_port, forget_process, state_file, write_state


def add_serve_command(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser("serve", help="serve a pipeline's champion (MLflow scoring protocol)")
    serve.add_argument("spec", help=PIPELINE_HELP)
    serve.add_argument("--host", help="interface to listen on (default: the spec's deployment.host)")
    serve.add_argument(
        "--port",
        type=int,
        help="0 picks a free port (default: the spec's deployment.port, else the port this endpoint had, else any)",
    )
    serve.add_argument("--tracking-uri", help="MLflow tracking/registry URI (default: the local one)")
    serve.add_argument(
        "--log-dir",
        help="inference log folder, or an object-store URL it is shipped to (default: in the artifact store)",
    )
    serve.add_argument("--shadow-log-dir", help="shadow answers' log folder or URL (default: beside the log)")
    serve.add_argument(
        "--state-file", help="its state file: address, pid, admin token (default: under MLOPS_HOME/endpoints)"
    )
    serve.add_argument(
        "--workers",
        type=int,
        help="processes serving the port, each with its own log files, restarted when one dies; rollouts reach "
        "every one before they are acknowledged (default: the spec's deployment.workers, else 1)",
    )
    serve.set_defaults(run=_serve)


def _serve(args: argparse.Namespace) -> int:
    import secrets

    from mlops_assets.serving.app import ScoringApp
    from mlops_assets.serving.inference_log import InferenceLogWriter, log_destination, log_schema
    from mlops_assets.serving.loading import champion_loader, version_loader
    from mlops_assets.serving.row_checks import column_rules
    from mlops_assets.serving.run import bind, run
    from mlops_assets.serving.settings import EndpointSettings
    from mlops_assets.serving.supervisor import Supervisor, reuse_port_sockets
    from mlops_assets.serving.worker_app import WorkerApp
    from mlops_assets.serving.worker_control import ControlFolder

    spec, spec_path = pipeline_spec(args.spec)
    dtypes = {c: spec.schema_.columns[c].dtype for c in spec.input_columns}
    layout = LocalLayout.from_env()
    settings = Settings.from_env()
    views = None
    if spec.features.views:  # the request carries each view's entity key, logged with the features looked up
        from mlops_assets.naming import FEATURE_VIEWS
        from mlops_assets.resources.artifact_store import FsspecArtifactStore
        from mlops_assets.serving.view_lookup import ViewLookup
        from mlops_assets.spec.feature_view import load_feature_views

        view_store = FsspecArtifactStore(root=(settings.store_url or str(layout.data)).rstrip("/"))
        views = ViewLookup.for_spec(spec, load_feature_views(spec_path.parent / FEATURE_VIEWS), view_store)
        dtypes = {**views.key_columns, **dtypes}
    tracking_uri = args.tracking_uri or settings.tracking_uri or layout.tracking_uri
    log_location = args.log_dir or f"{settings.store_url or layout.data}/{log_prefix(spec.name)}"
    shadow_name = shadow_log_prefix(spec.name).rsplit("/", 1)[-1]
    shadow_location = args.shadow_log_dir or f"{log_location.rstrip('/').rsplit('/', 1)[0]}/{shadow_name}"
    spool = layout.endpoints / "spool" / spec.name
    log_dir, log_ship_to = log_destination(log_location, spool / "inference_log")
    shadow_dir, shadow_ship_to = log_destination(shadow_location, spool / shadow_name)
    state_path = Path(args.state_file or state_file(layout.endpoints, spec.name))
    scoring_token = None
    if spec.deployment.scoring_token_env:
        scoring_token = os.environ.get(spec.deployment.scoring_token_env)
        if not scoring_token:
            raise MlopsError(f"deployment.scoring_token_env names {spec.deployment.scoring_token_env}, which is unset")
    # Secure by default: without MLOPS_ADMIN_TOKEN the endpoint makes its own, kept in the owner-only state file.
    configured_token = os.environ.get("MLOPS_ADMIN_TOKEN")
    admin_token = configured_token or secrets.token_urlsafe(32)
    tolerance = spec.deployment.fast_path_tolerance if spec.deployment.fast_path else None
    workers = args.workers if args.workers is not None else spec.deployment.workers
    if workers < 1:
        raise MlopsError(f"--workers must be at least 1; got {workers}")

    def endpoint_settings(segment: str | None = None) -> EndpointSettings:
        """Built in the process that serves (each worker's, after the fork): the log writers start threads."""
        log_schema_, shadow_schema = (log_schema(dtypes, spec.task, spec.id_column, shadow=s) for s in (False, True))
        return EndpointSettings(
            spec.name,
            dtypes,
            champion_loader(spec.name, tracking_uri, tolerance),
            InferenceLogWriter(log_dir, log_schema_, ship_to=log_ship_to, segment=segment),
            admin_token=admin_token,
            scoring_token=scoring_token,
            id_column=spec.id_column,
            version_loader=version_loader(spec.name, tracking_uri, tolerance),
            shadow_log=InferenceLogWriter(shadow_dir, shadow_schema, ship_to=shadow_ship_to, segment=segment),
            schema=column_rules(spec.schema_.columns),
            on_invalid=spec.deployment.on_invalid,
            skew_sample_every=spec.monitoring.skew.sample_every,
            feature_views=None if views is None else views.start(),
        )

    # a deployer inside a Dagster run started as a background job hands this process SIGTERM ignored (Dagster
    # copies SIGINT's disposition, ignored there, to SIGTERM): a stop must end it from the moment it is named
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    state_path.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(state_path.read_text()) if state_path.exists() else {}
    host = args.host or spec.deployment.host
    port = endpoint_port(args.port, spec.deployment.port, previous)
    try:  # before the state file names the address: a client that comes early waits, it is not refused
        sockets = reuse_port_sockets(host, port, workers) if workers > 1 else [bind(host, port)]
        sockets[0].listen(1024)
    except OSError as exc:
        raise MlopsError(
            f"cannot listen on {host}:{port} ({exc}); the {spec.name} endpoint keeps one address across restarts "
            f"(deployment.port, else the port it first had, kept in {state_path}): free that port, or declare "
            "another deployment.port"
        ) from None
    url = f"http://{host}:{sockets[0].getsockname()[1]}"
    state = {"pid": os.getpid(), "url": url, "spec": str(spec_path.resolve()), "log_dir": log_location}
    write_state(state_path, state if configured_token else {**state, "admin_token": admin_token})
    print(f"serving {spec.name} (champion) at {url} with {workers} worker(s), logging to {log_location}", flush=True)
    if workers == 1:
        run(ScoringApp(endpoint_settings()), sockets[0])
        code = 0
    else:  # the workers agree on what they serve through a folder beside the state file
        control = ControlFolder.create(state_path.with_name(f".{state_path.stem}.workers"), workers)

        def start_worker(index: int, sock) -> None:
            run(WorkerApp(endpoint_settings(f"w{index}"), control, index), sock)

        code = Supervisor(sockets, control, start_worker).run()
    if code == 0:
        forget_process(state_path, os.getpid())  # a clean exit is a stop: the supervisor restarts crashes only
    return code
