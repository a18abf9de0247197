"""The spec reference in docs/spec-reference.md is generated from the spec models."""

from pathlib import Path

from mlops_assets.spec.reference import render

REPO = Path(__file__).resolve().parents[3]


def test_the_docs_spec_reference_is_generated_from_the_models():
    reference = (REPO / "docs" / "spec-reference.md").read_text()
    assert render() in reference, (
        "docs/spec-reference.md is stale: run `mlops-assets spec-reference --update docs/spec-reference.md`"
    )
