"""How a spec file's problems are told: one line a field, named by its path in the file (the unknown keys of
one section share a line listing the allowed ones), and files that declare the same name refused together.
Pipeline specs and feature views are read the same way."""

from __future__ import annotations

import types
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin

from mlops_assets.spec.base import SpecModel

Named = TypeVar("Named")
Problem = TypeVar("Problem")


def describe_all(errors: list[dict[str, Any]], root: type[SpecModel]) -> list[str]:
    """One line per problem of a pydantic validation of ``root``; unknown keys of one section share a line."""
    lines, unknown = [], defaultdict(list)
    for error in errors:
        if error["type"] == "extra_forbidden":
            unknown[tuple(error["loc"][:-1])].append(error["loc"][-1])
        else:
            lines.append(_describe(error))
    for loc, keys in unknown.items():
        allowed = ", ".join(_allowed_keys(root, loc))
        lines.append(f"{_path(loc)}: unknown field(s) {', '.join(map(repr, keys))}; allowed: {allowed}")
    return lines


def one_per_name(
    loaded: list[tuple[Named, Path]], name: Callable[[Named], str], refused: Callable[[Path, str], Problem]
) -> tuple[list[tuple[Named, Path]], list[Problem]]:
    """The loaded files whose name no other file declares, and a problem for each that shares one: picking
    one of them could serve the wrong thing."""
    files_by_name = defaultdict(list)
    for item, path in loaded:
        files_by_name[name(item)].append(path.name)
    kept, problems = [], []
    for item, path in loaded:
        others = [other for other in files_by_name[name(item)] if other != path.name]
        if others:
            problems.append(refused(path, f"{name(item)!r} is also declared by {others}"))
        else:
            kept.append((item, path))
    return kept, problems


def _allowed_keys(root: type[SpecModel], loc: tuple[Any, ...]) -> list[str]:
    """Keys of the section at ``loc``, found by walking the models' annotations from ``root``."""
    node: Any = root
    for part in loc:
        node = _unwrap_optional(node)
        if isinstance(node, type) and issubclass(node, SpecModel):
            fields = {field.alias or name: field for name, field in node.model_fields.items()}
            node = fields[part].annotation if part in fields else None
        elif get_origin(node) in (list, dict):
            node = get_args(node)[-1]  # ``part`` is an index or a key: on to the item's type
    node = _unwrap_optional(node)
    if isinstance(node, type) and issubclass(node, SpecModel):
        return [field.alias or name for name, field in node.model_fields.items()]
    return []


def _unwrap_optional(annotation: Any) -> Any:
    args = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) in (Union, types.UnionType) and len(args) == 1:
        return args[0]
    return annotation


def _path(loc: tuple[Any, ...]) -> str:
    return ".".join("schema" if part == "schema_" else str(part) for part in loc) or "(top level)"


def _describe(error: dict[str, Any]) -> str:
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "missing":
        message = "required field is missing"
    return f"{_path(error['loc'])}: {message}"
