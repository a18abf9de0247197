"""One attack: what it tries, what the framework should do, and what it did."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Outcome:
    observed: str  # what happened, in a line
    held: bool  # the framework did what ``Attack.expected`` says


@dataclass(frozen=True)
class Attack:
    name: str
    expected: str
    run: Callable[[Path], Outcome]  # given a fresh temporary folder of its own
