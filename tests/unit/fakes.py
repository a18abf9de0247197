"""In-memory fakes of the contracts in ``mlops_assets.contracts``, for unit tests that start no process.

Each does what its contract's docstring states, as httpx's ``MockTransport`` does what a transport does, and
no more: MLflow's runs and the endpoint's HTTP are left out (``tests/unit/test_contracts.py`` checks the fakes,
the store against the local one). What a test arranges or inspects is a public method of the fake (``register``,
``refuse``, ``answer``, ``on_status``, ...), never a private attribute.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import threading
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import dagster as dg
from pydantic import PrivateAttr

from mlops_assets.contracts import ArtifactStore, EndpointDeployer, ModelRegistry, RegisteredModel, Trainer
from mlops_assets.model.registry import fitted_description
from mlops_assets.naming import CHALLENGER, CHAMPION
from mlops_assets.records import EndpointStatus, Rollout, TrainingResult
from mlops_assets.serving.routing import ArmStats, rollout_from_json


class MemoryArtifactStore(ArtifactStore):
    """Immutable data snapshots, reports and inference logs, addressed by ``/``-separated keys, in a dict."""

    _objects: dict[str, bytes] = PrivateAttr(default_factory=dict)
    _creating: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def exists(self, key: str) -> bool:
        return key in self._objects

    def write_table(self, key: str, table) -> int:
        import pyarrow.parquet as pq

        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        self._objects[key] = buffer.getvalue()
        return len(self._objects[key])

    def read_table(self, key: str):
        import pyarrow.parquet as pq

        return pq.read_table(io.BytesIO(self.read_bytes(key)))

    def row_count(self, key: str) -> int:
        import pyarrow.parquet as pq

        return pq.ParquetFile(io.BytesIO(self.read_bytes(key))).metadata.num_rows

    def write_bytes(self, key: str, data: bytes) -> None:
        self._objects[key] = bytes(data)

    def create(self, key: str, data: bytes) -> None:
        with self._creating:
            if key in self._objects:
                raise FileExistsError(key)
            self._objects[key] = bytes(data)

    @contextlib.contextmanager
    def open_write(self, key: str):
        buffer = io.BytesIO()
        yield buffer
        self._objects[key] = buffer.getvalue()

    def read_bytes(self, key: str) -> bytes:
        if key not in self._objects:
            raise FileNotFoundError(key)
        return self._objects[key]

    def list(self, prefix: str) -> list[str]:
        folder = prefix.rstrip("/") + "/"
        return sorted(key for key in self._objects if key.startswith(folder))

    def uri(self, key: str) -> str:
        return f"memory://{key}"


class MemoryModelRegistry(ModelRegistry):
    """Model versions and the ``champion``/``challenger`` aliases, tagged on promotion as the MLflow registry
    tags them (``approved_by``, ``deployed_at``, ``previous_champion``, ``rolled_back_by``/``_at``).

    Arrange with ``register`` (a finished training run and its version) and ``start_run`` (a training run
    still running); inspect with ``get``, ``by_alias``, ``metrics``, ``run_status``, ``artifacts`` and ``description``.
    """

    _versions: dict[tuple[str, str], dict[str, Any]] = PrivateAttr(default_factory=dict)
    _aliases: dict[tuple[str, str], str] = PrivateAttr(default_factory=dict)
    _runs: dict[str, dict[str, Any]] = PrivateAttr(default_factory=dict)
    _experiments: dict[str, str] = PrivateAttr(default_factory=dict)
    _artifacts: dict[str, dict[str, bytes]] = PrivateAttr(default_factory=dict)  # run id -> path -> bytes

    # arranging

    def start_run(self, name: str, tags: dict[str, str] | None = None) -> str:
        """A training run of the pipeline's experiment, still running; return its id."""
        run_id = f"run-{len(self._runs) + 1}"
        self._runs[run_id] = {"experiment": self.experiment(name), "status": "RUNNING", "tags": dict(tags or {})}
        self._runs[run_id]["metrics"] = {}
        return run_id

    def register(
        self,
        name: str,
        tags: dict[str, str] | None = None,
        metrics: dict[str, float] | None = None,
        model: Any = None,
        run_id: str | None = None,
    ) -> RegisteredModel:
        """The next version of ``name`` (1, 2, ...), from ``run_id`` or a new run, which ends as FINISHED."""
        run_id = run_id or self.start_run(name)
        self._runs[run_id]["status"] = "FINISHED"
        self._runs[run_id]["metrics"].update(metrics or {})
        version = str(1 + sum(1 for n, _ in self._versions if n == name))
        self._versions[(name, version)] = {"run_id": run_id, "tags": dict(tags or {}), "model": model}
        return self.get(name, version)

    def run_status(self, run_id: str) -> str:
        return self._runs[run_id]["status"]

    def artifacts(self, run_id: str) -> dict[str, bytes]:
        """The files logged to a run, by ``<folder>/<name>``."""
        return dict(self._artifacts.get(run_id, {}))

    def description(self, name: str, version: str) -> str | None:
        """The version's description, as ``describe`` left it (``None`` before)."""
        return self._version(name, version).get("description")

    # the contract

    def tracking_uri(self) -> str:
        return "memory://registry"

    def experiment(self, name: str) -> str:
        """Id of the pipeline's experiment, created on first use."""
        return self._experiments.setdefault(name, str(len(self._experiments) + 1))

    def by_alias(self, name: str, alias: str) -> RegisteredModel | None:
        version = self._aliases.get((name, alias))
        return None if version is None else self.get(name, version)

    def get(self, name: str, version: str) -> RegisteredModel:
        entry = self._version(name, version)
        return RegisteredModel(name, version, entry["run_id"], dict(entry["tags"]))

    def tagged(self, name: str, key: str, value: str) -> list[RegisteredModel]:
        found = [v for (model, v), entry in self._versions.items() if model == name and entry["tags"].get(key) == value]
        return [self.get(name, v) for v in sorted(found, key=int)]

    def load(self, name: str, version: str):
        model = self._version(name, version)["model"]
        if model is None:
            raise LookupError(f"{name} v{version} was registered without a model to load")
        return model

    def metrics(self, name: str, version: str) -> dict[str, float]:
        """The metrics of the version's training run."""
        return dict(self._runs[self._version(name, version)["run_id"]]["metrics"])

    def promote(self, name: str, version: str, approved_by: str, rollback: bool = False) -> RegisteredModel | None:
        """Point ``champion`` at ``version``, record who approved it; return the previous champion.

        A rollback also marks the replaced version as rolled back, and leaves ``version``'s own record of
        its predecessor alone."""
        self._version(name, version)
        previous = self.by_alias(name, CHAMPION)
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        tags = {"approved_by": approved_by, "deployed_at": now}
        if rollback and previous is not None:
            self._version(name, previous.version)["tags"].update(rolled_back_by=approved_by, rolled_back_at=now)
        elif previous is None or previous.version != version:
            tags["previous_champion"] = previous.version if previous else "none"
        self._version(name, version)["tags"].update(tags)
        self._aliases[(name, CHAMPION)] = version
        return previous

    def withdraw(self, name: str, alias: str) -> None:
        self._aliases.pop((name, alias), None)

    def fail_unfinished_runs(self, name: str, dagster_run_id: str) -> list[str]:
        """End as FAILED the pipeline's training runs that Dagster run ``dagster_run_id`` started and that are
        still running; return their ids."""
        experiment = self.experiment(name)
        ended = [
            run_id
            for run_id, run in self._runs.items()
            if run["experiment"] == experiment
            and run["status"] == "RUNNING"
            and run["tags"].get("dagster_run_id") == dagster_run_id
        ]
        for run_id in ended:
            self._runs[run_id]["status"] = "FAILED"
        return ended

    def record(self, name: str, version: str, tags: dict[str, str], run_metrics: dict[str, float]) -> None:
        """Attach tags to the version and metrics to its training run."""
        entry = self._version(name, version)
        entry["tags"].update(tags)
        self._runs[entry["run_id"]]["metrics"].update(run_metrics)

    def log_artifacts(self, run_id: str, files: dict[str, bytes], folder: str) -> None:
        if run_id not in self._runs:
            raise LookupError(f"no run {run_id}")
        self._artifacts.setdefault(run_id, {}).update({f"{folder}/{n}": bytes(b) for n, b in files.items()})

    def describe(self, name: str, version: str, card: str) -> None:
        """Make the model card the version's description, cut to fit as the MLflow registry's is."""
        self._version(name, version)["description"] = fitted_description(card)

    def _version(self, name: str, version: str) -> dict[str, Any]:
        if (name, version) not in self._versions:
            raise LookupError(f"{name} has no version {version}")
        return self._versions[(name, version)]


class MemoryTrainer(Trainer):
    """Answers each training request with the next result the test scripted (raising it when it is an
    exception), as a training process reports it; keeps the requests in ``requests``."""

    _script: list[Any] = PrivateAttr(default_factory=list)
    _requests: list[Any] = PrivateAttr(default_factory=list)

    def script(self, *results: TrainingResult | BaseException) -> MemoryTrainer:
        self._script.extend(results)
        return self

    @property
    def requests(self) -> list[Any]:
        return list(self._requests)

    def train(self, context, request) -> TrainingResult:
        """Return the result the training process reported."""
        self._requests.append(request)
        if not self._script:  # what the subprocess trainer says of a process that reported nothing
            raise dg.Failure("the training process ended without reporting a model version")
        result = self._script.pop(0)
        if isinstance(result, BaseException):
            raise result
        return result


class MemoryEndpointDeployer(EndpointDeployer):
    """One endpoint per pipeline, kept as a record: the version it serves, a running rollout and its per-arm
    counters. A reload, an ended rollout and a restart serve the registry's champion, as the real endpoint
    does; ``refuse`` makes a version one the endpoint cannot load.

    Traffic is what the test says it is: ``answer`` adds requests to an arm, and ``on_status``, when set, is
    called on every status read (each poll of a canary) before the counters are read.
    """

    _registry: ModelRegistry | None = PrivateAttr(default=None)
    _endpoints: dict[str, dict[str, Any]] = PrivateAttr(default_factory=dict)
    _refused: dict[str, str] = PrivateAttr(default_factory=dict)
    _deployments: list[tuple[str, str, str]] = PrivateAttr(default_factory=list)
    _on_status: Callable[[MemoryEndpointDeployer], None] | None = PrivateAttr(default=None)

    @classmethod
    def over(cls, registry: ModelRegistry) -> MemoryEndpointDeployer:
        """A deployer whose endpoints load the champion of ``registry``."""
        deployer = cls()
        deployer._registry = registry
        return deployer

    # arranging and inspecting

    def refuse(self, version: str, reason: str = "the pickle does not load") -> None:
        self._refused[version] = reason

    def on_status(self, hook: Callable[[MemoryEndpointDeployer], None] | None) -> None:
        self._on_status = hook

    def answer(self, name: str, arm: str, requests: int, rows: int | None = None, errors: int = 0) -> None:
        """``requests`` more requests answered by ``arm`` (``champion`` or ``challenger``), ``errors`` of them
        failed."""
        stats = self._endpoint(name)["arms"][arm]
        stats.requests += requests
        stats.rows += requests if rows is None else rows
        stats.errors += errors

    def served_version(self, name: str) -> str | None:
        endpoint = self._endpoints.get(name)
        return None if endpoint is None or not endpoint["up"] else endpoint["version"]

    @property
    def deployments(self) -> list[tuple[str, str, str]]:
        """Every successful ``deploy``: (spec path, version, log URI)."""
        return list(self._deployments)

    def stop(self, name: str) -> None:
        self._endpoint(name)["up"] = False

    def crash(self, name: str) -> None:
        self._endpoint(name).update(up=False, crashed=True)

    # the contract

    def running_url(self, name: str) -> str | None:
        """The URL of the pipeline's endpoint when one is running."""
        endpoint = self._endpoints.get(name)
        return endpoint["url"] if endpoint is not None and endpoint["up"] else None

    def deploy(self, spec_path: str, model: RegisteredModel, log_uri: str) -> str:
        """Return the endpoint's URL once it answers with ``model``; raise if it does not."""
        endpoint = self._endpoints.setdefault(model.name, self._new_endpoint(model.name))
        if model.version in self._refused:
            raise dg.Failure(f"endpoint {endpoint['url']} refused the reload: {self._refused[model.version]}")
        endpoint.update(up=True, crashed=False, version=model.version, rollout=None, challenger=None)
        self._deployments.append((spec_path, model.version, log_uri))
        return endpoint["url"]

    def start_rollout(self, name: str, rollout: Rollout) -> EndpointStatus:
        """Make the running endpoint load the challenger and route to it; return its status."""
        endpoint = self._running(name)
        try:  # what the endpoint's /admin/rollout checks before anything changes
            rollout_from_json(asdict(rollout))
        except ValueError as exc:
            raise dg.Failure(f"endpoint {endpoint['url']} refused /admin/rollout: invalid rollout: {exc}") from None
        if rollout.challenger_version in self._refused:
            raise dg.Failure(f"could not load challenger {rollout.challenger_version}")
        started = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
        endpoint.update(rollout={**asdict(rollout), "started_at": started}, challenger=rollout.challenger_version)
        endpoint["arms"] = {CHAMPION: ArmStats(), CHALLENGER: ArmStats()}
        return EndpointStatus.from_json(self._document(endpoint))

    def rollout_status(self, name: str) -> EndpointStatus:
        """The served version and how it scores (``fast_path_check``), the running rollout, each arm's counters."""
        endpoint = self._running(name)
        if self._on_status is not None:
            self._on_status(self)
        return EndpointStatus.from_json(self._document(endpoint))

    def end_rollout(self, name: str) -> EndpointStatus:
        """Drop the challenger and serve the registry's champion alone; return the final counters."""
        endpoint = self._running(name)
        final = self._document(endpoint)
        endpoint.update(version=self._champion(name), rollout=None, challenger=None)
        return EndpointStatus.from_json({**final, "model_version": endpoint["version"]})

    def crashed(self, name: str) -> str | None:
        """The endpoint's address when it was started, not stopped, and nothing listens there; else ``None``."""
        endpoint = self._endpoints.get(name)
        return endpoint["url"] if endpoint is not None and endpoint["crashed"] else None

    def restart(self, name: str) -> str:
        """Start the crashed endpoint again on its address, serving the champion; return the URL."""
        endpoint = self._endpoint(name)
        endpoint.update(up=True, crashed=False, version=self._champion(name), rollout=None, challenger=None)
        return endpoint["url"]

    def _new_endpoint(self, name: str) -> dict[str, Any]:
        arms = {CHAMPION: ArmStats(), CHALLENGER: ArmStats()}
        return {"url": f"http://{name}.endpoint.test", "up": False, "crashed": False, "version": None, "arms": arms}

    def _endpoint(self, name: str) -> dict[str, Any]:
        if name not in self._endpoints:
            raise dg.Failure(f"no endpoint was ever started for {name}")
        return self._endpoints[name]

    def _running(self, name: str) -> dict[str, Any]:
        endpoint = self._endpoints.get(name)
        if endpoint is None or not endpoint["up"]:
            raise dg.Failure(f"no endpoint is running for {name}")
        return endpoint

    def _champion(self, name: str) -> str:
        champion = None if self._registry is None else self._registry.by_alias(name, CHAMPION)
        if champion is None:
            raise dg.Failure(f"{name} has no champion to serve")
        if champion.version in self._refused:
            raise dg.Failure(f"could not load the champion v{champion.version}: {self._refused[champion.version]}")
        return champion.version

    def _document(self, endpoint: dict[str, Any]) -> dict[str, Any]:
        """What the endpoint's admin routes answer, as JSON: each route parses it as the real deployers do."""
        return {
            "model_version": endpoint["version"],
            "fast_path_check": f"python: v{endpoint['version']} (in-memory endpoint)",
            "rollout": endpoint.get("rollout"),
            "arms": {arm: asdict(stats) for arm, stats in endpoint["arms"].items()},
        }
