"""A spec reads files inside its own folder (or a root the operator lists in ``MLOPS_DATA_ROOTS``), symlinks
followed; an object-store URL carries no credentials. Each refusal names the file and the field."""

import shutil
from pathlib import Path

import pytest
import yaml

from mlops_assets.spec import load_spec, load_specs
from mlops_assets.spec.data_roots import DATA_ROOTS_ENV
from tests.unit.spec.test_pipeline import problems, write_variant

REPO = Path(__file__).resolve().parents[3]
FEATURES = "data/breast_cancer/features.csv"


@pytest.fixture
def elsewhere(pipelines: Path) -> Path:
    """A folder beside the spec's, holding a copy of its data: what a spec must not reach."""
    folder = pipelines.parent / "elsewhere"
    folder.mkdir()
    shutil.copy(pipelines / FEATURES, folder / "x.csv")
    return folder


def with_path(pipelines: Path, field: str, value: str) -> Path:
    def edit(raw):
        {"source": raw["source"], "labels": raw["source"]["labels"], "batch": raw["batch"]}[field]["path"] = value

    return write_variant(pipelines, edit)


@pytest.mark.parametrize(("field", "loc"), [("source", "source.path"), ("batch", "batch.path")])
@pytest.mark.parametrize("how", ["parent", "absolute", "symlink", "symlink in a glob"])
def test_a_data_file_outside_the_spec_folder_is_refused_naming_the_field(pipelines, elsewhere, field, loc, how):
    (pipelines / "data" / "link.csv").symlink_to(elsewhere / "x.csv")
    value = {
        "parent": "../elsewhere/x.csv",
        "absolute": str(elsewhere / "x.csv"),
        "symlink": "data/link.csv",
        "symlink in a glob": "data/*.csv",
    }[how]
    message = problems(with_path(pipelines, field, value))
    assert f"{loc}: {value!r}" in message and f"resolves to {elsewhere / 'x.csv'}, outside the spec's folder" in message
    assert DATA_ROOTS_ENV in message


@pytest.mark.parametrize("value", ["../elsewhere/", "../elsewhere/*.csv", "/etc/"])
def test_a_labels_folder_outside_the_spec_folder_is_refused(pipelines, elsewhere, value):
    message = problems(with_path(pipelines, "labels", value))
    assert f"source.labels.path: {value!r} resolves to" in message and "outside the spec's folder" in message


def test_a_root_the_operator_lists_may_be_read(pipelines, elsewhere, monkeypatch):
    path = with_path(pipelines, "source", "../elsewhere/x.csv")
    problems(path)
    monkeypatch.setenv(DATA_ROOTS_ENV, f"/nonexistent:{elsewhere}")
    assert load_spec(path).source.path == "../elsewhere/x.csv"


@pytest.mark.parametrize("field", ["source", "labels", "batch"])
@pytest.mark.parametrize(
    ("url", "refusal"),
    [
        ("s3://AKIAKEY:wJalrSECRET@bucket/x.csv", "the URL holds credentials"),
        ("s3://AKIAKEY@bucket/x.csv", "the URL holds credentials"),
        ("gs://user:wJalrSECRET@bucket/x.csv", "the URL holds credentials"),
        ("http://169.254.169.254/latest/meta-data/x.csv", "http:// is not an object store"),
        ("memory://x.csv", "memory:// is not an object store"),
        ("simplecache::file:///etc/x.csv", "a chained URL"),
    ],
)
def test_an_object_store_url_with_credentials_or_another_scheme_is_refused(pipelines, field, url, refusal):
    message = problems(with_path(pipelines, field, url))
    loc = {"source": "source.path", "labels": "source.labels.path", "batch": "batch.path"}[field]
    assert f"{loc}: {refusal}" in message
    assert "wJalrSECRET" not in message and "AKIAKEY" not in message  # an error is logged: it never quotes a secret


@pytest.mark.parametrize("url", ["s3://bucket/data/*.csv", "gs://bucket/x.parquet", "abfs://labels@account/x/"])
def test_an_object_store_url_without_credentials_loads(pipelines, url):
    assert load_spec(with_path(pipelines, "source", url)).source.path == url


def test_the_bundled_pipelines_and_the_example_project_still_load():
    assert len(load_specs(REPO / "pipelines")) == 3
    defs = REPO / "examples/dg_project/ml_pipelines/defs/diabetes/defs.yaml"
    assert load_spec(defs).source.path == yaml.safe_load(defs.read_text())["attributes"]["source"]["path"]
