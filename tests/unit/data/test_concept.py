"""The concept test: a change of what the inputs say about the label, told apart from label noise."""

import numpy as np
import pandas as pd
import pytest

from mlops_assets.data.concept import MIN_ROWS, _paired_auc, concept_test

INPUTS = {"x1": "float", "x2": "float", "segment": "str"}


def cases(n: int, seed: int, flipped: bool = False, noise: float = 0.0, shift: float = 0.0, curved: bool = False):
    """Binary cases: the label follows x1 (reversed when ``flipped``; through sin(2 x1) when ``curved``), x2 and
    the segment; ``noise`` flips that share of the labels at random; ``shift`` moves x1's mean."""
    rng = np.random.default_rng(seed)
    x1, x2, segment = rng.normal(loc=shift, size=n), rng.normal(size=n), rng.choice(["a", "b", "c"], n)
    effect = 2 * np.sin(2 * x1) if curved else x1
    signal = (-effect if flipped else effect) + 0.5 * x2 + 0.3 * (segment == "a") + rng.normal(scale=0.5, size=n)
    y = (signal > 0).astype(int)
    return pd.DataFrame({"x1": x1, "x2": x2, "segment": segment, "y": np.where(rng.random(n) < noise, 1 - y, y)})


def verdict(source, production, task="binary"):
    return concept_test(source, production, INPUTS, "y", task)


@pytest.mark.parametrize("rows", [500, 5_000])
@pytest.mark.parametrize("noise", [0.1, 0.3])
def test_symmetric_label_noise_in_production_is_not_a_concept_change(rows, noise):
    result = verdict(cases(16_000, 0), cases(rows, 1, noise=noise))
    assert not result.changed and result.reason.startswith("the concept holds")
    assert result.gain < result.margin  # the noisy rows teach nothing the clean source does not


@pytest.mark.parametrize("rows", [500, 5_000])
def test_a_reversed_relationship_is_a_concept_change(rows):
    result = verdict(cases(16_000, 0), cases(rows, 1, flipped=True))
    assert result.changed and result.reason.startswith("the concept changed")
    assert result.source_model < 0.4 < 0.8 < result.production_model  # the source ranks today's rows backwards
    assert result.low > result.margin


def test_a_flip_over_half_the_inputs_is_found_once_the_rows_can_show_it():
    source = cases(16_000, 0)

    def half_flipped(n, seed):
        frame = cases(n, seed)
        other = cases(n, seed, flipped=True)
        return frame.where(frame["x2"] > 0, other)  # the label's relation to x1 reversed where x2 <= 0

    assert verdict(source, half_flipped(5_000, 1)).changed
    small = verdict(source, half_flipped(60, 1))
    assert not small.changed and small.low < small.margin < small.high  # too few rows to be sure, not a "no"


def test_the_interval_narrows_as_production_rows_grow_and_too_few_rows_are_not_tested():
    source = cases(16_000, 0)
    widths = [(r.high - r.low) for r in (verdict(source, cases(n, 1, flipped=True)) for n in (100, 1_000, 5_000))]
    assert widths[0] > widths[1] > widths[2] > 0
    too_few = verdict(source, cases(MIN_ROWS - 1, 1, flipped=True))
    assert not too_few.changed and too_few.gain is None
    assert too_few.reason == f"concept not tested: {MIN_ROWS - 1} labelled production rows, fewer than {MIN_ROWS}"


def test_a_curved_relationship_under_covariate_shift_is_not_a_concept_change():
    # a linear model cannot follow sin(2 x1) over the source's range, and can over production's narrower one:
    # the source model weighted toward production's inputs learns the same part of the curve
    result = verdict(cases(16_000, 0, curved=True), cases(5_000, 1, shift=1.5, curved=True))
    assert not result.changed
    assert verdict(cases(16_000, 0, curved=True), cases(5_000, 1, shift=1.5, curved=True, flipped=True)).changed


def test_a_multiclass_or_numeric_target_is_judged_on_accuracy_or_r2():
    def numeric(n, seed, flipped=False, noise=0.0):
        frame = cases(n, seed)
        rng = np.random.default_rng(seed + 100)
        y = (-2 if flipped else 2) * frame["x1"] + frame["x2"] + rng.normal(size=n) + noise * rng.normal(size=n)
        return frame.assign(y=y)

    def classes(n, seed, flipped=False):
        frame = numeric(n, seed, flipped)
        return frame.assign(y=np.digitize(frame["y"], [-1.0, 1.0]))

    regression = verdict(numeric(16_000, 0), numeric(2_000, 1, flipped=True), "regression")
    assert regression.metric == "r2" and regression.changed
    assert not verdict(numeric(16_000, 0), numeric(2_000, 1, noise=3.0), "regression").changed
    multiclass = verdict(classes(16_000, 0), classes(2_000, 1, flipped=True), "multiclass")
    assert multiclass.metric == "accuracy" and multiclass.changed
    assert not verdict(classes(16_000, 0), classes(2_000, 1), "multiclass").changed


def test_the_same_rows_give_the_same_verdict():
    source, production = cases(16_000, 0), cases(3_000, 1, noise=0.1)
    assert verdict(source, production) == verdict(source, production)
    assert verdict(source, production).as_json()["gain"] == round(verdict(source, production).gain, 4)


def test_the_paired_auc_agrees_with_scikit_learn():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    a, b = y + rng.normal(size=400), np.round(y + rng.normal(scale=0.5, size=400), 1)  # b has ties
    auc_a, auc_b, difference, error = _paired_auc(y, a, b)
    assert auc_a == pytest.approx(roc_auc_score(y, a)) and auc_b == pytest.approx(roc_auc_score(y, b))
    assert difference == pytest.approx(auc_b - auc_a) and 0 < error < 0.05
