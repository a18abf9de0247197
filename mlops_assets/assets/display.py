"""How figures appear in Dagster metadata: measurements to four significant digits, settings as text.

Metadata is what a person reads in the UI, and a metric's sixteenth digit is float noise there; the reports
in the artifact store keep every digit. Dagster also plots each numeric entry across materializations and
check runs, so a setting (a threshold, a limit) given as a number draws a flat line beside what was measured:
settings go in as text.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import dagster as dg

SIGNIFICANT_DIGITS = 4


def rounded(value: float) -> float:
    """``value`` to ``SIGNIFICANT_DIGITS`` significant digits; NaN and infinities as they are."""
    return float(f"{value:.{SIGNIFICANT_DIGITS}g}") if math.isfinite(value) else value


def shown(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """``metadata`` as the UI shows it: plain floats, ``MetadataValue.float`` and the floats inside
    ``MetadataValue.json`` rounded (``rounded``); every other entry as it is."""
    return {name: _shown_value(value) for name, value in metadata.items()}


def setting(value: float) -> dg.TextMetadataValue:
    """A threshold or limit as text, so Dagster's plots of the entry's owner draw only measurements."""
    return dg.MetadataValue.text(f"{rounded(value):g}")


def _shown_value(value: Any) -> Any:
    if isinstance(value, float):  # bool is no float; numpy's float64 is one
        return rounded(value)
    if isinstance(value, dg.FloatMetadataValue) and value.value is not None:
        return dg.MetadataValue.float(rounded(value.value))
    if isinstance(value, dg.JsonMetadataValue):
        return dg.MetadataValue.json(_rounded_json(value.data))
    return value


def _rounded_json(data: Any) -> Any:
    if isinstance(data, float):
        return rounded(data)
    if isinstance(data, Mapping):
        return {key: _rounded_json(item) for key, item in data.items()}
    if isinstance(data, list | tuple):
        return [_rounded_json(item) for item in data]
    return data
