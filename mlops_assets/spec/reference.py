"""The spec reference in Markdown, rendered from the spec models so that docs/spec-reference.md cannot drift."""

from __future__ import annotations

import json

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from mlops_assets.spec import PipelineSpec


def _default(field) -> str:
    if field.is_required():
        return "required"
    if field.default_factory is not None:
        value = field.default_factory()
        return "see below" if isinstance(value, BaseModel) else f"`{json.dumps(value)}`"
    return "" if field.default is PydanticUndefined else f"`{json.dumps(field.default)}`"


def _sections(model: type[BaseModel], prefix: str) -> list[tuple[str, type[BaseModel]]]:
    found = [(prefix, model)]
    for name, field in model.model_fields.items():
        for candidate in (field.annotation, *getattr(field.annotation, "__args__", ())):
            inner = getattr(candidate, "__args__", (candidate,))
            for typ in (candidate, *inner):
                if isinstance(typ, type) and issubclass(typ, BaseModel):
                    found += _sections(typ, f"{prefix}.{field.alias or name}" if prefix else field.alias or name)
    return list(dict.fromkeys(found))


MARKER = "## Spec reference\n"


def update_reference(markdown: str) -> str:
    """``markdown`` with what follows the intro paragraph of its spec reference section replaced by ``render()``."""
    head, _, tail = markdown.partition(MARKER)
    intro = tail.strip().split("\n\n", 1)[0]
    return f"{head}{MARKER}\n{intro}\n\n{render()}\n"


def render() -> str:
    parts = []
    for path, model in _sections(PipelineSpec, ""):
        parts.append(f"### `{path or '(top level)'}`\n\n| field | default | meaning |\n|---|---|---|")
        for name, field in model.model_fields.items():
            parts[-1] += f"\n| `{field.alias or name}` | {_default(field)} | {field.description or ''} |"
    return "\n\n".join(parts)
