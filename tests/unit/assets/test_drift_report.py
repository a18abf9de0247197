"""The drift report's plots: at most ``MAX_DRIFT_PLOTS`` drifted features drawn, the others named."""

import numpy as np
import pandas as pd
import pyarrow as pa

from mlops_assets.assets.drift_report import feature_plots, plots_metadata
from mlops_assets.monitoring.drift.plots import MAX_DRIFT_PLOTS
from mlops_assets.monitoring.drift.verdict import compute_drift
from mlops_assets.monitoring.log_window import LogWindow
from mlops_assets.monitoring.report import DriftOutcome
from mlops_assets.spec.drift import DriftConfig


def test_drifted_features_past_the_cap_and_absent_ones_are_named_not_plotted():
    rng = np.random.default_rng(0)
    names = [f"x {i}" for i in range(MAX_DRIFT_PLOTS + 2)]
    reference = {name: rng.normal(0, 1, 1_000) for name in names}
    current = {name: rng.normal(2, 1, 300) for name in names}
    report = compute_drift(reference, current, {**dict.fromkeys(names, "float"), "gone": "float"}, DriftConfig())
    assert report.drifted_features == [*names, "gone"]  # "gone" is absent from the window
    window = LogWindow(pa.table(current), "rows 0-300")
    outcome = DriftOutcome(
        "drifted", window, "", report.to_dict(), report.drifted_features, reference=pd.DataFrame(reference)
    )

    plots = feature_plots(outcome, model=None, version="1")  # the prediction did not drift: no model is asked
    assert [plot.filename for plot in plots] == [f"{i}-x_{i - 1}.png" for i in range(1, MAX_DRIFT_PLOTS + 1)]
    metadata = plots_metadata(plots, report.drifted_features, "file:///reports/drift/report")
    markdown = metadata["drift_plots"].value
    assert markdown.count("](data:image/png;base64,") == MAX_DRIFT_PLOTS
    assert f"3 drifted feature(s) not plotted: x {MAX_DRIFT_PLOTS}, x {MAX_DRIFT_PLOTS + 1}, gone" in markdown
    assert metadata["plots"].value == "file:///reports/drift/report"
