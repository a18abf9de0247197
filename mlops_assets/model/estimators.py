"""Build the estimator a spec names by import path: checked again for real (``spec.estimators`` checked its
source when the spec loaded), imported, instantiated, and its parameter values checked against the estimator's
own constraints (scikit-learn's ``_parameter_constraints``), at training time and in ``validate``.
"""

from __future__ import annotations

import importlib
import inspect
import re
from typing import Any

from mlops_assets.errors import SpecError
from mlops_assets.spec.estimators import REQUIRED_METHODS, split_allowed

_PARAMETER_NAMED = re.compile(r"The '(\w+)' parameter")  # how scikit-learn's InvalidParameterError begins


def build_estimator(import_path: str, params: dict[str, Any], spec_path: str) -> Any:
    """Check, import and instantiate; a disallowed class, wrong parameter names or values the estimator's
    ``_parameter_constraints`` refuse are a ``SpecError`` naming the field."""
    try:
        module_name, attribute = split_allowed(import_path)
    except ValueError as exc:
        raise SpecError(spec_path, [f"model.estimator: {exc}"]) from None
    cls = getattr(importlib.import_module(module_name), attribute, None)
    missing = [m for m in REQUIRED_METHODS if not callable(getattr(cls, m, None))]
    if not inspect.isclass(cls) or missing:
        raise SpecError(spec_path, [f"model.estimator: {import_path!r} is not an estimator class with fit and predict"])
    accepted = inspect.signature(cls).parameters
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise SpecError(
            spec_path,
            [f"model.params: {unknown} not accepted by {import_path}; allowed: {', '.join(accepted)}"],
        )
    try:
        estimator = cls(**params)
        if callable(getattr(estimator, "_validate_params", None)):
            estimator._validate_params()  # what fit would refuse, refused now: types, ranges, choices
    except (TypeError, ValueError) as exc:  # scikit-learn's InvalidParameterError is both
        named = _PARAMETER_NAMED.match(str(exc))
        field = f"model.params.{named.group(1)}" if named else "model.params"
        raise SpecError(spec_path, [f"{field}: {exc}"]) from None
    return estimator
