"""What every asset of one pipeline is built from: its spec, where the spec lives, and its asset keys."""

from __future__ import annotations

import base64
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar, cast

import dagster as dg

from mlops_assets.naming import FEATURE_VIEWS, asset_keys
from mlops_assets.spec import PipelineSpec
from mlops_assets.spec.feature_view import FeatureView

if TYPE_CHECKING:
    from mlops_assets.contracts import ScoringModel
    from mlops_assets.model.pipeline_model import PipelineModel


@dataclass(frozen=True)
class PipelineContext:
    """One spec as the asset builders see it; relative paths in the spec resolve against ``base_dir``."""

    spec: PipelineSpec
    spec_path: Path

    @property
    def base_dir(self) -> Path:
        return self.spec_path.parent

    @cached_property
    def keys(self) -> dict[str, dg.AssetKey]:
        return asset_keys(self.spec.name)

    @cached_property
    def code_version(self) -> str:
        """The spec's hash, computed once for all the pipeline's assets: it serialises the whole spec."""
        return self.spec.spec_hash

    @property
    def common(self) -> dict:
        """Arguments every asset of the pipeline shares: its group, the spec's hash as code version, and the
        step pods' CPU and memory on Kubernetes (``dagster-k8s/config`` op tags, from ``model.resources``): set
        on the assets, not the job, so sensor-launched runs get them too."""
        return {"group_name": self.spec.name, "code_version": self.code_version, **self.op_tags}

    @cached_property
    def op_tags(self) -> dict:
        from mlops_assets.model.k8s_pod import step_op_tags

        tags = step_op_tags(self.spec)
        return {"op_tags": tags} if tags else {}

    @cached_property
    def views(self) -> dict[str, FeatureView]:
        """The feature views the spec references, from the ``feature_views`` folder beside it (checked when the
        spec was loaded)."""
        if not self.spec.features.views:
            return {}
        from mlops_assets.spec.feature_view import read_feature_views

        views = {view.name: view for view, _ in read_feature_views(self.base_dir / FEATURE_VIEWS)[0]}
        return {ref.view: views[ref.view] for ref in self.spec.features.views}

    @property
    def has_feedback(self) -> bool:
        """Labels arrive apart from the source: logged rows joined with them become training data."""
        return self.spec.source.labels is not None


F = TypeVar("F", bound=Callable)


def signature_once(fn: F) -> F:
    """``fn`` with its signature computed once and kept: ``@dg.asset`` reads an asset function's signature over
    a dozen times while it builds the asset, on every load of the code location, and ``inspect.signature``
    returns a function's ``__signature__`` when it has one."""
    fn.__signature__ = inspect.signature(fn)  # type: ignore[attr-defined]  # a function takes any attribute
    return fn


def pipeline_model(model: ScoringModel) -> PipelineModel:
    """``model`` (what ``ModelRegistry.load`` returns) as the ``PipelineModel`` it is, for the domain functions
    that take one: the core names the class by its shape alone (``contracts.ScoringModel``). No check at run
    time: a test's registry may hand back a stand-in."""
    return cast("PipelineModel", model)


def markdown_image(png: bytes, alt: str) -> str:
    """A PNG inlined in Markdown metadata, so the Dagster UI shows the plot itself."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"


def markdown_list(lines: list[str]) -> str:
    return "\n".join(f"- {line}" for line in lines)
