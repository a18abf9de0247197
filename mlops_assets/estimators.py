"""Find and build the estimator a spec names by import path.

``locate`` runs when a spec is loaded, which happens on every Dagster code-location load: importing
scikit-learn there would cost over a second, so it finds the module file and the class name in its
source without importing anything. ``build_estimator`` imports for real, at training time.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
from pathlib import Path
from typing import Any

from mlops_assets.errors import SpecError


def locate(import_path: str) -> None:
    """Raise ``ValueError`` unless ``import_path`` (``package.module.Class``) names a defined class."""
    module_name, _, attribute = import_path.rpartition(".")
    if not module_name or not attribute:
        raise ValueError(f"{import_path!r} is not an import path like 'sklearn.linear_model.Ridge'")
    source = _module_source(module_name)
    if source is None:
        raise ValueError(f"module {module_name!r} of {import_path!r} is not installed")
    if attribute not in _defined_names(source.read_text()):
        raise ValueError(f"{module_name!r} defines no {attribute!r}")


def _module_source(module_name: str) -> Path | None:
    top, *rest = module_name.split(".")
    spec = importlib.util.find_spec(top)
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent
    if not rest:
        return Path(spec.origin)
    for part in rest[:-1]:
        path = path / part
    for candidate in (path / rest[-1] / "__init__.py", path / f"{rest[-1]}.py"):
        if candidate.exists():
            return candidate
    return None


def _defined_names(source: str) -> set[str]:
    """Names a module binds at top level: classes, functions, assignments and imports."""
    names: set[str] = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.ClassDef | ast.FunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def build_estimator(import_path: str, params: dict[str, Any], spec_path: str) -> Any:
    """Import and instantiate; wrong parameter names become a ``SpecError`` on ``model.params``."""
    module_name, _, attribute = import_path.rpartition(".")
    cls = getattr(importlib.import_module(module_name), attribute)
    accepted = inspect.signature(cls).parameters
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise SpecError(
            spec_path,
            [f"model.params: {unknown} not accepted by {import_path}; allowed: {', '.join(accepted)}"],
        )
    return cls(**params)
