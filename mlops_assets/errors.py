"""Exceptions a user can act on: each says what went wrong, where, and how to fix it."""


class MlopsError(Exception):
    """Base class: the CLI prints these without a traceback because they describe user input."""


class SpecError(MlopsError):
    """A pipeline spec that cannot be used, with the file and the field path of every problem."""

    def __init__(self, path: str, problems: list[str]):
        self.path = path
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid pipeline spec {path}:\n{lines}")


class DataError(MlopsError):
    """Input data that cannot be processed row by row (a missing column, an unreadable file)."""


class PayloadError(MlopsError):
    """A scoring request the endpoint cannot score; answered with HTTP 400 and this message."""
