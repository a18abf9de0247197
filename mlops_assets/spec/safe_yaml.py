"""Read a spec's YAML as plain data (mappings, lists, strings, numbers, booleans, null), within bounds.

A spec is read on every Dagster code-location load and by ``mlops-assets validate``, so a hostile or broken
file must fail fast with a ``SpecError`` rather than exhaust memory: YAML aliases let a few hundred bytes
stand for billions of values ("billion laughs"), which PyYAML shares by reference until something (pydantic,
``json.dumps``, pandera) walks them. The expansion is therefore measured on the composed node graph, before
any Python object exists, and nesting is bounded because PyYAML composes recursively.

Every load of the code location reads every spec, so the events come from libyaml's C parser where PyYAML
was built with it (PyYAML's own Python parser otherwise, several times slower); the nodes
are still composed by PyYAML's Python composer, whose recursion is what the nesting bound stops.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer, ComposerError
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from mlops_assets.errors import SpecError
from mlops_assets.spec.data_roots import irregular_kind

MAX_BYTES = 1 << 20  # specs are a few kilobytes; a long list of allowed categories still fits
MAX_VALUES = 100_000  # values after expanding aliases
MAX_DEPTH = 32  # nesting levels after expanding aliases; a spec needs about six
_NOT_JSON = ("binary", "timestamp", "set", "omap", "pairs")
_LIBYAML_TOO_DEEP = "exceeded maximum nesting depth"


class _PythonParser(Reader, Scanner, Parser):
    """PyYAML's own parser, written in Python: what reads specs where PyYAML has no libyaml."""

    def __init__(self, stream: str):
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)


try:
    from yaml.cyaml import CParser as _FastParser  # libyaml's, as yaml.CSafeLoader parses
except ImportError:  # PyYAML built without libyaml
    _FastParser = _PythonParser


class _BoundedComposer(Composer):
    """PyYAML's composer, stopped past ``MAX_DEPTH`` nested nodes: it composes recursively."""

    def __init__(self) -> None:
        Composer.__init__(self)
        self._depth = 0

    def get_single_node(self) -> Node | None:
        try:
            return super().get_single_node()
        except yaml.MarkedYAMLError as exc:  # libyaml refuses over 1000 open flow levels before we compose them
            if exc.problem != _LIBYAML_TOO_DEEP:
                raise
            raise ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels", exc.problem_mark) from None

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels", mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class _JsonConstructor(SafeConstructor):
    """Builds only JSON-like values: explicit ``!!binary``/``!!set``/... tags are refused, so every spec can
    be hashed as JSON."""


def _refuse(loader: SafeConstructor, node: Node) -> Any:
    raise ConstructorError(None, None, f"{node.tag} values are not allowed in a spec", node.start_mark)


for _tag in _NOT_JSON:
    _JsonConstructor.add_constructor(f"tag:yaml.org,2002:{_tag}", _refuse)


class _NoDateResolver(Resolver):
    """An unquoted date stays a string."""


_NoDateResolver.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in Resolver.yaml_implicit_resolvers.items()
}


def _spec_loader(parser: type) -> type:
    """A loader of spec YAML over ``parser``'s events (a class whose ``__init__`` takes the text)."""

    class SpecLoader(_BoundedComposer, parser, _JsonConstructor, _NoDateResolver):
        def __init__(self, stream: str):
            parser.__init__(self, stream)
            _BoundedComposer.__init__(self)
            _JsonConstructor.__init__(self)
            _NoDateResolver.__init__(self)

    return SpecLoader


_SpecLoader = _spec_loader(_FastParser)


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
    """The file's text; only a regular file is read. It is opened without blocking and checked on its open
    descriptor: a FIFO named like a spec would otherwise block the open until a writer came, and with it
    ``validate`` and the whole code location."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise SpecError(str(path), ["file does not exist"]) from None
    except OSError as exc:
        raise SpecError(str(path), [f"cannot be read: {exc.strerror or exc}"]) from None
    kind = irregular_kind(os.fstat(fd).st_mode)
    if kind:
        os.close(fd)
        raise SpecError(str(path), [f"cannot be read: not a regular file ({kind}); a spec is a YAML file"])
    with os.fdopen(fd, "rb") as file:
        try:
            data = file.read(MAX_BYTES + 1)
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
