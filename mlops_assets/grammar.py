"""The grammar of derived-column expressions: arithmetic over columns, numbers and a short list of functions.

Specs come from users, so expressions are never passed to ``eval``: they are parsed with ``ast`` and only the
constructs named here are accepted. Pure (``ast`` alone): the spec checks its ``features.derived`` with it when it
loads, and ``model.expressions`` evaluates what it accepts with numpy (its ``FUNCTIONS`` are these names).

>>> sorted(parse("log1p(a) + b / 2")[1])
['a', 'b']
"""

from __future__ import annotations

import ast

FUNCTION_NAMES = ("abs", "exp", "log", "log1p", "sqrt", "minimum", "maximum")
BINARY_OPERATORS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow)
UNARY_OPERATORS = (ast.USub, ast.UAdd)


def parse(source: str) -> tuple[ast.expr, frozenset[str]]:
    """The syntax tree of ``source`` and the columns it reads; ``ValueError`` naming the first construct that is
    not allowed."""
    try:
        tree = ast.parse(source, mode="eval").body
    except SyntaxError as exc:
        raise ValueError(f"cannot parse expression {source!r}: {exc.msg}") from None
    columns: set[str] = set()
    _check(tree, columns)
    return tree, frozenset(columns)


def _check(node: ast.expr, columns: set[str]) -> None:
    if isinstance(node, ast.BinOp) and type(node.op) in BINARY_OPERATORS:
        _check(node.left, columns)
        _check(node.right, columns)
    elif isinstance(node, ast.UnaryOp) and type(node.op) in UNARY_OPERATORS:
        _check(node.operand, columns)
    elif isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        pass
    elif isinstance(node, ast.Name):
        columns.add(node.id)
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        if node.func.id not in FUNCTION_NAMES:
            allowed = ", ".join(sorted(FUNCTION_NAMES))
            raise ValueError(f"unknown function {node.func.id!r}; allowed: {allowed}")
        for arg in node.args:
            _check(arg, columns)
    else:
        raise ValueError(
            f"{ast.unparse(node)!r} is not allowed: use column names, numbers, + - * / ** and "
            f"the functions {', '.join(sorted(FUNCTION_NAMES))}"
        )
