"""Model versions as the endpoint serves them: loaded from the registry, with a compiled fast path where
that reproduces the Python model on the version's own holdout."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

from mlops_assets.model.pipeline_model import PipelineModel, Prediction
from mlops_assets.naming import CHAMPION
from mlops_assets.serving.fast_path import CompiledModel

log = logging.getLogger(__name__)

FAST_PATH_MAX_ROWS = 100  # from a few hundred rows scikit-learn's own loops are as fast (fast_path.py)


@dataclass(frozen=True)
class LoadedModel:
    """A model version ready to serve: the Python model, and its compiled form where that was verified."""

    version: str
    model: PipelineModel
    compiled: CompiledModel | None = None  # answers requests of up to FAST_PATH_MAX_ROWS rows
    fast_path_check: str = "not tried"  # why the compiled path is or is not used

    def predict(self, columns: dict, n_rows: int) -> Prediction:
        """Scored by the path that serves ``n_rows`` rows; its ``features`` are those that path computed."""
        if self.compiled is not None and n_rows <= FAST_PATH_MAX_ROWS:
            return self.compiled.predict(columns)
        return self.model.predict(columns)

    @property
    def path(self) -> str:
        """The code path that scores a single row, as /version reports it."""
        return self.compiled.description if self.compiled is not None else "python"


ModelLoader = Callable[[], LoadedModel]
VersionLoader = Callable[[str], LoadedModel]


def with_fast_path(loaded: LoadedModel, holdout: dict | None, tolerance: float) -> LoadedModel:
    """``loaded`` with its compiled form when that reproduces the Python model on the version's holdout
    within ``tolerance`` (probabilities, or predictions for regression) and with identical labels."""
    from mlops_assets.serving.fast_path import compile_model, verify

    try:  # compiling reads fitted attributes that a scikit-learn release may rename
        compiled = compile_model(loaded.model)
    except Exception as exc:
        return replace(loaded, fast_path_check=f"python: could not compile: {exc!r}")
    if compiled is None:
        return replace(loaded, fast_path_check=f"python: {type(loaded.model.estimator).__name__} is not compiled")
    if holdout is None:
        return replace(loaded, fast_path_check=f"python: version {loaded.version} has no stored holdout to check on")
    verdict = verify(compiled, loaded.model, holdout, tolerance)
    if not verdict.passed:
        log.warning("version %s: the compiled form failed its check (%s)", loaded.version, verdict.reason)
        return replace(loaded, fast_path_check=f"python: the compiled form failed its check: {verdict.reason}")
    return replace(loaded, compiled=compiled, fast_path_check=f"{compiled.description}: {verdict.reason}")


def version_loader(name: str, tracking_uri: str, fast_path_tolerance: float | None = None) -> VersionLoader:
    """Loads one registered version of the pipeline's model; with a tolerance, also its verified fast path."""

    def load(version: str) -> LoadedModel:
        from mlops_assets.model.registry import MlflowRegistryClient

        registry = MlflowRegistryClient(tracking_uri)
        loaded = LoadedModel(version, registry.load(name, version), None, "fast path off")
        if fast_path_tolerance is None:
            return loaded
        holdout = registry.holdout_inputs(name, version)
        columns = None if holdout is None else {c: holdout[c].to_numpy() for c in holdout.columns}
        return with_fast_path(loaded, columns, fast_path_tolerance)

    return load


def champion_loader(name: str, tracking_uri: str, fast_path_tolerance: float | None = None) -> ModelLoader:
    """Loads whatever version the registry's ``champion`` alias points at when called."""

    def load() -> LoadedModel:
        from mlops_assets.model.registry import MlflowRegistryClient

        champion = MlflowRegistryClient(tracking_uri).by_alias(name, CHAMPION)
        if champion is None:
            raise LookupError(f"{name} has no {CHAMPION} in the registry at {tracking_uri}")
        return version_loader(name, tracking_uri, fast_path_tolerance)(champion.version)

    return load
