"""Read a spec's YAML as plain data (mappings, lists, strings, numbers, booleans, null), within bounds.

A spec is read on every Dagster code-location load and by ``mlops-assets validate``, so a hostile or broken
file must fail fast with a ``SpecError`` rather than exhaust memory: YAML aliases let a few hundred bytes
stand for billions of values ("billion laughs"), which PyYAML shares by reference until something (pydantic,
``json.dumps``, pandera) walks them. The expansion is therefore measured on the composed node graph, before
any Python object exists, and nesting is bounded because PyYAML composes recursively.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, SequenceNode

from mlops_assets.errors import SpecError

MAX_BYTES = 1 << 20  # specs are a few kilobytes; a long list of allowed categories still fits
MAX_VALUES = 100_000  # values after expanding aliases
MAX_DEPTH = 32  # nesting levels after expanding aliases; a spec needs about six
_NOT_JSON = ("binary", "timestamp", "set", "omap", "pairs")


class _SpecLoader(yaml.SafeLoader):
    """SafeLoader that stops composing past ``MAX_DEPTH`` and builds only JSON-like values: an unquoted
    date stays a string, and explicit ``!!binary``/``!!set``/... tags are refused, so every spec can be
    hashed as JSON."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels", mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _refuse(loader: yaml.SafeLoader, node: Node) -> Any:
    raise ConstructorError(None, None, f"{node.tag} values are not allowed in a spec", node.start_mark)


_SpecLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _tag in _NOT_JSON:
    _SpecLoader.add_constructor(f"tag:yaml.org,2002:{_tag}", _refuse)


def load_yaml(path: Path) -> Any:
    """The data in ``path``; a ``SpecError`` naming the file when it is unreadable, too large, not YAML,
    or expands (through aliases) past ``MAX_VALUES`` values or ``MAX_DEPTH`` levels."""
    text = _read_text(path)
    try:
        return _load_bounded(text, str(path))
    except (yaml.YAMLError, ValueError) as exc:  # ValueError: a scalar PyYAML cannot convert (an int of 5000 digits)
        raise SpecError(str(path), [f"not valid YAML: {exc}"]) from None


def _load_bounded(text: str, name: str) -> Any:
    loader = _SpecLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        values, depth = _expanded_size(node, {}, set())
        if values > MAX_VALUES or depth > MAX_DEPTH:
            raise SpecError(
                name,
                [
                    f"holds {values} values nested {depth} deep, counting each alias (*name) as all that its "
                    f"anchor (&name) holds; a spec may hold at most {MAX_VALUES} values in {MAX_DEPTH} levels"
                ],
            )
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _read_text(path: Path) -> str:
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise SpecError(str(path), ["file does not exist"]) from None
    except OSError as exc:
        raise SpecError(str(path), [f"cannot be read: {exc.strerror or exc}"]) from None
    if len(data) > MAX_BYTES:
        raise SpecError(str(path), [f"larger than {MAX_BYTES} bytes: a spec describes data, it does not hold it"])
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SpecError(str(path), [f"not UTF-8 text: {exc}"]) from None


def _expanded_size(node: Node, done: dict[Node, tuple[int, int]], open_: set[Node]) -> tuple[int, int]:
    """Values and nesting depth of ``node`` with every alias written out.

    An alias can only name an anchor that came earlier in the document, so walking in document order
    finds it either measured (in ``done``) or still open: then it contains itself.
    """
    if node in done:
        return done[node]
    if node in open_:
        raise ComposerError(None, None, "an alias refers to a value that contains it", node.start_mark)
    open_.add(node)
    children: list[Node] = []
    if isinstance(node, SequenceNode):
        children = node.value
    elif isinstance(node, MappingNode):
        children = [part for pair in node.value for part in pair]
    values, depth = 1, 0
    for child in children:
        child_values, child_depth = _expanded_size(child, done, open_)
        values, depth = values + child_values, max(depth, child_depth)
    open_.discard(node)
    done[node] = (values, depth + 1)
    return done[node]
