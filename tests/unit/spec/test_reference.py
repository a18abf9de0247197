"""The README's spec reference is generated from the spec models."""

from pathlib import Path

from mlops_assets.spec.reference import render

REPO = Path(__file__).resolve().parents[3]


def test_readme_spec_reference_is_generated_from_the_models():
    readme = (REPO / "README.md").read_text()
    assert render() in readme, "README's spec reference is stale: paste `mlops-assets spec-reference` into it"
