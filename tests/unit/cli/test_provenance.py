"""``mlops-assets lineage`` and ``reproduce`` name a pipeline by its name or by its spec file."""

from mlops_assets.cli.provenance import pipeline_name


def test_a_pipeline_is_named_by_its_name_or_by_the_name_in_its_spec_file_even_an_invalid_one(tmp_path):
    assert pipeline_name("churn") == "churn"
    path = tmp_path / "churn.yaml"
    path.write_text("name: churn_v2\nmodel: {}\n")
    assert pipeline_name(str(path)) == "churn_v2"
