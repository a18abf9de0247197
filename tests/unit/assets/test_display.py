"""What Dagster shows: measurements to four significant digits, settings as text, every other entry as it is."""

import math

import dagster as dg

from mlops_assets.assets.display import rounded, setting, shown


def test_figures_keep_four_significant_digits_whatever_their_scale():
    assert [rounded(v) for v in (0.9876543210123, 123456.789, 0.000123456789, -2.718281828)] == [
        0.9877,
        123500.0,
        0.0001235,
        -2.718,
    ]
    assert rounded(0.5) == 0.5 and rounded(0.0) == 0.0
    assert math.isnan(rounded(math.nan)) and rounded(math.inf) == math.inf


def test_shown_metadata_rounds_every_float_and_leaves_the_rest():
    metadata = shown(
        {
            "plain": 0.123456789,
            "typed": dg.MetadataValue.float(1 / 3),
            "nested": dg.MetadataValue.json({"share": 2 / 3, "latency_ms": [1.23456789, None], "requests": 7}),
            "rows": 569,
            "passed": True,
            "version": "3",
            "report": dg.MetadataValue.md("| roc_auc | 0.9876543 |"),
            "none": dg.MetadataValue.float(None),
        }
    )
    assert metadata["plain"] == 0.1235 and metadata["typed"] == dg.MetadataValue.float(0.3333)
    assert metadata["nested"].data == {"share": 0.6667, "latency_ms": [1.235, None], "requests": 7}
    assert (metadata["rows"], metadata["passed"], metadata["version"]) == (569, True, "3")
    assert metadata["report"].value == "| roc_auc | 0.9876543 |"  # Markdown is formatted where it is written
    assert metadata["none"] == dg.MetadataValue.float(None)


def test_a_setting_is_text_so_that_dagster_plots_only_measurements():
    assert setting(0.01) == dg.MetadataValue.text("0.01") and setting(20) == dg.MetadataValue.text("20")
    assert setting(1 / 3) == dg.MetadataValue.text("0.3333")
