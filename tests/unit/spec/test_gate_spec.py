"""``evaluation.gate.must_beat_champion``: on by default, off by choice, and no new hash for specs that leave it."""

import pytest

from mlops_assets.errors import SpecError
from mlops_assets.spec import load_spec
from tests.unit.spec.test_pipeline import write_variant


def test_a_challenger_must_beat_the_champion_unless_the_spec_says_otherwise(pipelines):
    assert load_spec(pipelines / "breast_cancer.yaml").evaluation.gate.must_beat_champion
    variant = write_variant(pipelines, lambda raw: raw["evaluation"]["gate"].update(must_beat_champion=False))
    assert not load_spec(variant).evaluation.gate.must_beat_champion


def test_leaving_the_rule_at_its_default_keeps_the_spec_hash(pipelines):
    original = load_spec(pipelines / "breast_cancer.yaml")
    explicit = load_spec(
        write_variant(pipelines, lambda raw: raw["evaluation"]["gate"].update(must_beat_champion=True))
    )
    opted_out = load_spec(
        write_variant(pipelines, lambda raw: raw["evaluation"]["gate"].update(must_beat_champion=False))
    )
    assert explicit.spec_hash == original.spec_hash != opted_out.spec_hash


def test_the_rule_is_a_boolean(pipelines):
    with pytest.raises(SpecError, match="must_beat_champion"):
        load_spec(write_variant(pipelines, lambda raw: raw["evaluation"]["gate"].update(must_beat_champion="maybe")))
