"""Drift plots: one PNG per feature, numbers as densities and categories as shares, whatever the values hold."""

import io

import numpy as np

from mlops_assets.monitoring.drift.plots import drift_plots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_each_feature_gets_a_png_of_its_reference_against_the_window():
    rng = np.random.default_rng(0)
    reference = {
        "income": rng.normal(50, 10, 2_000),
        "age": rng.integers(18, 90, 2_000).astype(object),  # a nullable column arrives as objects
        "region": rng.choice(["north", "south", "east", "west"], 2_000),
        "prediction": np.array([0, 1] * 1_000),  # the model's int classes against the logged text
    }
    current = {
        "income": np.append(rng.normal(70, 10, 400), [np.nan, np.inf]),
        "age": np.array([None] * 50, dtype=object),  # no value at all: nothing to draw but the legend
        "region": rng.choice(["north", "mars"], 400),
        "prediction": np.array(["1"] * 300 + ["0"] * 100, dtype=object),
    }
    kinds = {"income": "numeric", "age": "numeric", "region": "categorical", "prediction": "categorical"}
    plots = drift_plots(kinds, reference, current)
    assert list(plots) == list(kinds)
    assert all(png.startswith(PNG_SIGNATURE) for png in plots.values())
    import matplotlib.image

    sizes = [matplotlib.image.imread(io.BytesIO(png)).shape[:2] for png in plots.values()]
    assert all(height <= 300 and width <= 300 for height, width in sizes)  # small: they travel inline in metadata
