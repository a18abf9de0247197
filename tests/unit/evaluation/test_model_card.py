import re

import pandas as pd
import yaml
from sklearn.linear_model import Ridge

from mlops_assets.evaluation.fairness import fairness_figures
from mlops_assets.evaluation.model_card import CardFigures, card_figures, card_html, model_card
from mlops_assets.model.pipeline_model import fit_pipeline_model
from mlops_assets.records import EvaluationReport, FeatureSet, TrainedModel
from mlops_assets.spec import load_spec

HOSTILE = "<script>alert(1)</script> | x"


def diabetes_spec(pipelines, **evaluation):
    raw = yaml.safe_load((pipelines / "diabetes.yaml").read_text())
    raw["evaluation"].update(evaluation)
    path = pipelines / "diabetes.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_spec(path)


def report(gate_passed=True, reasons=()) -> EvaluationReport:
    features = FeatureSet("f1", "train", "holdout", None, "d1", rows_by_origin={"source": 300})
    trained = TrainedModel("diabetes", "3", "run1", features, "manual")
    metrics = {"rmse": 55.0, "mae": 44.0, "r2": 0.45}
    return EvaluationReport(trained, metrics, None, None, gate_passed, list(reasons))


def test_card_figures_of_a_fitted_model_fill_every_section(pipelines):
    spec = diabetes_spec(
        pipelines,
        slices=["sex"],
        fairness={"sensitive": ["sex"], "limits": {"error_gap": 50.0}},
        card={"intended_use": "Research on progression.", "limitations": "Not for diagnosis."},
    )
    frame = pd.read_csv(pipelines / "data/diabetes/diabetes.csv", dtype={"sex": str})
    model = fit_pipeline_model(spec, frame[:300], Ridge())
    figures = card_figures(spec, model, frame[300:].reset_index(drop=True))
    assert figures.rows == len(frame) - 300 and set(figures.target_summary) == {"mean", "std", "min", "max"}
    value, low, high = figures.intervals["rmse"]
    assert low < value < high
    assert set(figures.slices["sex"]) == {"1", "2"} and figures.slices["sex"]["1"]["rows"] > 0
    (gap,) = figures.fairness
    assert gap.name == "error_gap" and gap.value >= 0
    assert {i.column for i in figures.importance} == set(spec.input_columns)
    assert figures.importance[0].column in ("ltg", "bmi")  # the two strongest predictors of progression

    card = model_card(spec, report(), {}, "", figures)
    for heading in (
        "Intended use",
        "Limitations",
        "Provenance",
        "Data",
        "Slices by `sex`",
        "Fairness",
        "Permutation importance",
        "Gate: passed",
    ):
        assert f"## {heading}" in card, heading
    assert "Research on progression." in card and "Not for diagnosis." in card
    assert "| sex | error_gap |" in card and "| 50.0 |" in card
    assert "- Approval: not yet approved" in card
    assert "| rmse | 55.0000 | " in card


def test_the_approval_is_the_versions_approved_by_tag(pipelines):
    spec = diabetes_spec(pipelines)
    assert "- Approval: alice" in model_card(spec, report(), {"approved_by": "alice"})


def test_html_escapes_every_value_from_data_and_keeps_the_table_shape(pipelines):
    spec = diabetes_spec(pipelines, card={"intended_use": "<img src=x onerror=alert(1)>"})
    groups = [HOSTILE] * 2 + ["b\nc"] * 2
    figures = CardFigures(
        4,
        {"mean": 1.0, "std": 0.0, "min": 1.0, "max": 1.0},
        {"rmse": (55.0, 50.0, 60.0)},
        {"sex": {HOSTILE: {"rows": 2, "rmse": 1.0}, "b\nc": {"rows": 2, "rmse": 2.0}}},
        fairness_figures("regression", "sex", [1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 5.0], groups, None),
    )
    reasons = [f"fixed holdout: FAIL: error_gap on 'sex' 0.5 ≤ 0.1 ({HOSTILE}: mae 0.000 of 2 rows)"]
    card = model_card(spec, report(False, reasons), {"git_sha": "<b>sha</b>"}, "", figures)
    page = card_html(card, "Model card: <diabetes>")
    assert "<script" not in page and "<img" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; | x" in page
    assert "<title>Model card: &lt;diabetes&gt;</title>" in page
    slice_rows = re.findall(r"<tr><td>[^<]*(?:&lt;script|b c)[^<]*</td>(?:<td>[^<]*</td>)*</tr>", page)
    assert slice_rows and all(row.count("<td>") == 3 for row in slice_rows[:2])
    assert "<h2>Gate: FAILED</h2>" in page and "<code>sex</code>" in page


def test_html_renders_headings_lists_tables_and_paragraphs():
    page = card_html("# Title\n\ntext `code`\n\n- one\n- two\n\n| a | b |\n|---|---|\n| 1 | 2 \\| 3 |\n", "t")
    assert "<h1>Title</h1>" in page and "<p>text <code>code</code></p>" in page
    assert "<ul><li>one</li><li>two</li></ul>" in page
    assert "<table><thead><tr><th>a</th><th>b</th></tr></thead><tbody><tr><td>1</td><td>2 | 3</td></tr>" in page
