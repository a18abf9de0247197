"""Derived-column expressions: arithmetic over columns, parsed once and evaluated with numpy.

Specs come from users, so expressions are never passed to ``eval``: they are parsed with ``ast`` by the grammar
of ``mlops_assets.grammar``, which accepts only arithmetic, numeric constants, column names and a short list of
numpy functions.

>>> import numpy as np
>>> expr = Expression.parse("log1p(a) + b / 2")
>>> sorted(expr.columns)
['a', 'b']
>>> expr.evaluate({"a": np.array([0.0]), "b": np.array([4.0])}).tolist()
[2.0]
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from mlops_assets import grammar

FUNCTIONS: dict[str, Callable[..., np.ndarray]] = {  # grammar.FUNCTION_NAMES, each evaluated
    "abs": np.abs,
    "exp": np.exp,
    "log": np.log,
    "log1p": np.log1p,
    "sqrt": np.sqrt,
    "minimum": np.minimum,
    "maximum": np.maximum,
}
_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}


@dataclass(frozen=True)
class Expression:
    """A validated expression: its source text, its syntax tree and the columns it reads."""

    source: str
    tree: ast.expr
    columns: frozenset[str]

    @classmethod
    def parse(cls, source: str) -> Expression:
        """Parse ``source``; raise ``ValueError`` naming the first construct that is not allowed."""
        tree, columns = grammar.parse(source)
        return cls(source=source, tree=tree, columns=columns)

    def evaluate(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """Evaluate over float arrays; division by zero gives inf/nan as numpy does."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(_eval(self.tree, columns), dtype=np.float64)


def _eval(node: ast.expr, columns: Mapping[str, np.ndarray]):
    if isinstance(node, ast.BinOp):
        return _BINARY[type(node.op)](_eval(node.left, columns), _eval(node.right, columns))
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_eval(node.operand, columns))
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return np.asarray(columns[node.id], dtype=np.float64)
    assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    return FUNCTIONS[node.func.id](*(_eval(arg, columns) for arg in node.args))
