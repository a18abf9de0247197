"""An endpoint of several workers as `mlops-assets serve --workers N` runs it, with models fitted here instead of a
registry: ``python -m tests.integration.workers_endpoint FOLDER WORKERS``. The registry's champion is the version
named in ``FOLDER/champion`` (``1`` or ``2``), read at each load; the log goes to ``FOLDER/log``. It prints its
port once its sockets listen, then serves until SIGTERM."""

import functools
import sys
from pathlib import Path

from mlops_assets.serving.inference_log import InferenceLogWriter, log_schema
from mlops_assets.serving.loading import LoadedModel
from mlops_assets.serving.run import run
from mlops_assets.serving.settings import EndpointSettings
from mlops_assets.serving.supervisor import Supervisor, reuse_port_sockets
from mlops_assets.serving.worker_app import WorkerApp
from mlops_assets.serving.worker_control import ControlFolder

REGULARISATION = {"1": 0.5, "2": 0.0001}  # version 2 answers differently on some rows


@functools.cache
def version(name: str) -> LoadedModel:
    from tests.integration.test_server import fitted

    return LoadedModel(name, fitted(REGULARISATION[name]))


def main(folder: Path, workers: int) -> int:
    from tests.integration.test_server import DTYPES, RULES, SPEC

    def start_worker(index: int, sock) -> None:
        settings = EndpointSettings(
            SPEC.name,
            DTYPES,
            lambda: version((folder / "champion").read_text().strip()),
            InferenceLogWriter(folder / "log", log_schema(DTYPES, SPEC.task), flush_seconds=0.2, segment=f"w{index}"),
            admin_token="secret",
            version_loader=version,
            schema=RULES,
            telemetry_interval_s=0,
        )
        run(WorkerApp(settings, control, index, admin_timeout_s=60), sock)

    sockets = reuse_port_sockets("127.0.0.1", 0, workers)
    control = ControlFolder.create(folder / "control", workers)
    print(sockets[0].getsockname()[1], flush=True)
    return Supervisor(sockets, control, start_worker).run()


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), int(sys.argv[2])))
