"""Check the estimator a spec names by import path, reading its source and importing nothing.

A spec is untrusted input: its import path must name a class from an allowed module (scikit-learn, plus
the module prefixes listed in ``MLOPS_ALLOWED_ESTIMATOR_MODULES``) that has ``fit`` and ``predict``, or
``subprocess.Popen`` with ``params: {args: [...]}`` would run a command. The path must be public below the
allowed prefix: no ``tests`` package (scikit-learn ships classes built to misbehave there) and no ``_private``
module. ``locate`` checks this when a spec is loaded, on every Dagster code-location load, where importing
scikit-learn would cost over a second: it reads the modules' source with ``ast`` (following re-exports and base
classes) and imports nothing; ``init_parameters`` reads the parameter names the same way.
``model.estimators.build_estimator`` checks again for real before it instantiates, at training time and in
``validate``, and then checks the values against the estimator's own constraints (scikit-learn's
``_parameter_constraints``).
"""

from __future__ import annotations

import ast
import builtins
import functools
import importlib
import importlib.util
import inspect
import os
import sys
from pathlib import Path
from typing import Any

ALLOWED_MODULES_ENV = "MLOPS_ALLOWED_ESTIMATOR_MODULES"
DEFAULT_ALLOWED_MODULES = ("sklearn",)
REQUIRED_METHODS = ("fit", "predict")
_MAX_HOPS = 12  # re-exports and base classes followed before the static check gives up
_ABSENT = "absent"  # a class whose bases define no __init__: it takes no parameters
_WRITES_INIT = {"dataclass", "s", "attrs", "define", "frozen", "mutable"}  # decorators that write __init__


def allowed_modules() -> tuple[str, ...]:
    """scikit-learn, and the comma-separated module prefixes of ``MLOPS_ALLOWED_ESTIMATOR_MODULES``."""
    extra = [p.strip() for p in os.environ.get(ALLOWED_MODULES_ENV, "").split(",") if p.strip()]
    return DEFAULT_ALLOWED_MODULES + tuple(extra)


def split_allowed(import_path: str) -> tuple[str, str]:
    """``(module, class name)`` of ``import_path``; ``ValueError`` unless it is in an allowed module."""
    module_name, _, attribute = import_path.rpartition(".")
    if not module_name or not all(part.isidentifier() for part in import_path.split(".")):
        raise ValueError(f"{import_path!r} is not an import path like 'sklearn.linear_model.Ridge'")
    allowed = allowed_modules()
    prefixes = [p for p in allowed if module_name == p or module_name.startswith(f"{p}.")]
    if not prefixes:
        raise ValueError(
            f"{import_path!r} is not in an allowed module (allowed: {', '.join(allowed)}); "
            f"to trust another, add its prefix to {ALLOWED_MODULES_ENV} (comma-separated)"
        )
    below = module_name.removeprefix(max(prefixes, key=len)).split(".")[1:]
    private = [part for part in below if part.startswith("_") or part == "tests" or part.startswith("test_")]
    if private and "test" in private[0]:
        raise ValueError(
            f"{import_path!r} is in a test module ({private[0]}), whose classes are built to misbehave; name a "
            f"public estimator, or list the module's prefix in {ALLOWED_MODULES_ENV}"
        )
    if private:
        public = ".".join(module_name.split(".")[: module_name.split(".").index(private[0])])
        raise ValueError(
            f"{import_path!r} is in a private module ({private[0]}); name the class where it is public "
            f"(e.g. '{public}.{attribute}'), or list the module's prefix in {ALLOWED_MODULES_ENV}"
        )
    return module_name, attribute


def locate(import_path: str) -> None:
    """Raise ``ValueError`` unless ``import_path`` names an allowed class with ``fit`` and ``predict``, as
    far as its source shows (a base class the source cannot resolve leaves the methods to ``build_estimator``)."""
    module_name, attribute = split_allowed(import_path)
    if _module_source(module_name) is None:
        raise ValueError(f"module {module_name!r} of {import_path!r} is not installed (or has no Python source)")
    if _module_source(import_path) is not None:
        raise ValueError(f"{import_path!r} is a module, not an estimator class")
    found = _find_class(module_name, attribute, _MAX_HOPS)
    if found is None:
        raise ValueError(f"{module_name!r} defines no {attribute!r}")
    if isinstance(found, str):
        raise ValueError(f"{import_path!r} is {found}, not an estimator class")
    if attribute.startswith("_"):
        raise ValueError(f"{import_path!r} is a private class; name a public estimator")
    methods, complete = _methods(*found, _MAX_HOPS)
    missing = [m for m in REQUIRED_METHODS if m not in methods]
    if missing and complete:
        raise ValueError(f"{import_path!r} is not an estimator: it has no {' or '.join(missing)}")


@functools.lru_cache(maxsize=1024)
def _module_source(module_name: str) -> Path | None:
    """The file of ``module_name``, found without importing it or its parents (``find_spec`` of a dotted
    name would import the package). Kept per process, as ``_bindings`` keeps what the file binds: each spec
    naming the same class asks again for the same modules."""
    top, *rest = module_name.split(".")
    if not all(part.isidentifier() for part in (top, *rest)):
        return None
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):  # a half-imported module in sys.modules
        return None
    if spec is None or spec.origin is None or not Path(spec.origin).is_file():
        return None  # not installed, built-in, or a namespace package
    path = Path(spec.origin).parent
    if not rest:
        return Path(spec.origin)
    for part in rest[:-1]:
        path = path / part
    for candidate in (path / rest[-1] / "__init__.py", path / f"{rest[-1]}.py"):
        if candidate.is_file():
            return candidate
    return None


@functools.lru_cache(maxsize=256)
def _bindings(module_name: str) -> dict[str, ast.ClassDef | tuple[str, str] | str]:
    """Top-level names of a module: its classes, what it imports from where, and what else it binds."""
    source = _module_source(module_name)
    if source is None:
        return {}
    try:
        tree = ast.parse(source.read_bytes())
    except (OSError, SyntaxError, ValueError):
        return {}
    package = module_name if source.name == "__init__.py" else module_name.rpartition(".")[0]
    names: dict[str, ast.ClassDef | tuple[str, str] | str] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            names[node.name] = node
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names[node.name] = "a function"
        elif isinstance(node, ast.Import):
            names.update({(a.asname or a.name).split(".")[0]: "a module" for a in node.names})
        elif isinstance(node, ast.ImportFrom):
            origin = _absolute(package, node.module, node.level)
            names.update({a.asname or a.name: (origin, a.name) for a in node.names})
        elif isinstance(node, ast.Assign):
            names.update({t.id: "a variable" for t in node.targets if isinstance(t, ast.Name)})
    return names


def _absolute(package: str, module: str | None, level: int) -> str:
    if not level:
        return module or ""
    parts = package.split(".")[: len(package.split(".")) - level + 1]
    return ".".join(parts + ([module] if module else []))


def _find_class(module_name: str, name: str, hops: int) -> tuple[str, ast.ClassDef] | str | None:
    """Where ``name`` of ``module_name`` is defined as a class, following ``from x import name``; a string
    says what it is instead; ``None``: not found."""
    binding = _bindings(module_name).get(name)
    if isinstance(binding, tuple):
        origin, original = binding
        if _module_source(f"{origin}.{original}") is not None:
            return "a module"
        return _find_class(origin, original, hops - 1) if hops > 0 else None
    if isinstance(binding, ast.ClassDef):
        return module_name, binding
    return binding


def _methods(module_name: str, cls: ast.ClassDef, hops: int) -> tuple[set[str], bool]:
    """Method names of ``cls`` and its base classes, and whether every base class could be read."""
    methods = {n.name for n in cls.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    complete = True
    for base in cls.bases:
        if isinstance(base, ast.Name) and _from_python_itself(module_name, base.id):
            continue  # object, dict, abc.ABC: none has fit or predict
        found = _find_class(module_name, base.id, hops - 1) if isinstance(base, ast.Name) and hops > 0 else None
        if isinstance(found, tuple):
            inherited, base_complete = _methods(*found, hops - 1)
            methods, complete = methods | inherited, complete and base_complete
        else:
            complete = False
    return methods, complete


def _from_python_itself(module_name: str, name: str) -> bool:
    """Whether ``name`` in ``module_name`` is a built-in class or imported from the standard library, whose
    sources may be frozen or compiled and are never read."""
    binding = _bindings(module_name).get(name)
    if binding is None:
        return inspect.isclass(getattr(builtins, name, None))
    return isinstance(binding, tuple) and binding[0].split(".")[0] in sys.stdlib_module_names


def init_parameters(import_path: str) -> tuple[list[str], list[str]] | None:
    """The keyword parameters of the class's ``__init__`` and those without a default, as its source shows
    (found the way ``locate`` finds the class); ``None`` where the source cannot tell: ``*args``/``**kwargs``,
    or a base class it cannot read."""
    module_name, attribute = split_allowed(import_path)
    found = _find_class(module_name, attribute, _MAX_HOPS)
    if not isinstance(found, tuple):
        return None
    init = _init_of(*found, _MAX_HOPS)
    return ([], []) if init == _ABSENT else init


def _init_of(module_name: str, cls: ast.ClassDef, hops: int) -> tuple[list[str], list[str]] | str | None:
    if _init_written_for(cls):
        return None
    for node in cls.body:
        if isinstance(node, ast.FunctionDef) and node.name == "__init__":
            args = node.args
            if args.vararg or args.kwarg:
                return None
            positional = [*args.posonlyargs, *args.args][1:]  # after self
            names = [a.arg for a in positional] + [a.arg for a in args.kwonlyargs]
            required = [a.arg for a in positional[: len(positional) - len(args.defaults)]]
            required += [a.arg for a, default in zip(args.kwonlyargs, args.kw_defaults, strict=True) if default is None]
            return names, required
    for base in cls.bases:  # in order, depth first: the method resolution order of estimators' simple hierarchies
        if isinstance(base, ast.Name) and _from_python_itself(module_name, base.id):
            continue
        found = _find_class(module_name, base.id, hops - 1) if isinstance(base, ast.Name) and hops > 0 else None
        if not isinstance(found, tuple):
            return None
        init = _init_of(*found, hops - 1)
        if init != _ABSENT:
            return init
    return _ABSENT


def _init_written_for(cls: ast.ClassDef) -> bool:
    """Whether a decorator (``@dataclass``, attrs) or a metaclass may write the class's ``__init__``, which the
    source then does not show."""
    decorators = [ast.unparse(d).split("(")[0].rsplit(".", 1)[-1] for d in cls.decorator_list]
    metaclasses = [ast.unparse(k.value) for k in cls.keywords if k.arg == "metaclass"]
    return any(d in _WRITES_INIT for d in decorators) or any(m.rsplit(".", 1)[-1] != "ABCMeta" for m in metaclasses)


def params_problems(import_path: str, params: dict[str, Any]) -> list[str]:
    """What the spec's ``params`` get wrong about the names of the class's parameters, one line each, as far
    as its source shows (nothing imported: this runs on every spec load)."""
    init = init_parameters(import_path)
    if init is None:
        return []
    names, required = init
    unknown = sorted(set(params) - set(names))
    problems = [f"{unknown} not accepted by {import_path}; allowed: {', '.join(names) or 'none'}"] if unknown else []
    missing = [name for name in required if name not in params]
    if missing:
        problems.append(f"{import_path} requires {', '.join(map(repr, missing))}: give it under params")
    return problems
