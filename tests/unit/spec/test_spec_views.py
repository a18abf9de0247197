"""A spec names the feature views it uses (``features.views``); the loader checks each reference against the
views of the ``feature_views`` folder beside it, and every problem names the field and the spec file."""

import pytest

from mlops_assets.errors import SpecError
from mlops_assets.spec import load_spec, read_specs

VIEW = """\
name: customer
entity: customer_id
timestamp: updated_at
source: {path: customers.csv}
features: [plan_price]
aggregations: [{column: spend, function: sum, window: 30d, name: spend_30d}]
ttl: 60d
"""

SPEC = """\
name: churn
task: binary
target: churned
id_column: example_id
source: {path: examples.csv}
schema:
  columns:
    example_id: {dtype: str}
    customer_id: {dtype: int}
    example_time: {dtype: str}
    churned: {dtype: str, isin: ["yes", "no"]}
    plan_price: {dtype: float, nullable: true}
    spend_30d: {dtype: float, nullable: true}
features:
  views:
    - {view: customer, entity_column: customer_id, time_column: example_time}
model: {estimator: sklearn.ensemble.HistGradientBoostingClassifier}
"""


@pytest.fixture
def folder(tmp_path):
    views = tmp_path / "feature_views"
    views.mkdir()
    (views / "customers.csv").write_text("customer_id,updated_at,plan_price,spend\n1,2025-01-01,10.0,3.0\n")
    (views / "customer.yaml").write_text(VIEW)
    (tmp_path / "examples.csv").write_text("example_id,customer_id,example_time,churned\nE1,1,2025-02-01,no\n")
    return tmp_path


def write_spec(folder, text, name="churn.yaml"):
    path = folder / name
    path.write_text(text)
    return path


def problems_of(path) -> str:
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    message = str(caught.value)
    assert path.name in message
    return message


def test_a_spec_referencing_a_view_loads_and_its_key_columns_are_not_features(folder):
    spec = load_spec(write_spec(folder, SPEC))
    assert [reference.view for reference in spec.features.views] == ["customer"]
    assert spec.feature_columns == ["plan_price", "spend_30d"]


def test_an_unknown_view_or_feature_names_the_field_and_the_file(folder):
    text = SPEC.replace("- {view: customer,", "- {view: customer, features: [plan_price, age],")
    text = text.replace("model:", "    - {view: device, entity_column: customer_id, time_column: example_time}\nmodel:")
    message = problems_of(write_spec(folder, text))
    assert "features.views.0.features: ['age'] are not features of view 'customer'" in message
    assert "features.views.1.view: unknown view 'device'; known: ['customer']" in message


def test_a_view_feature_the_schema_does_not_declare_is_an_error(folder):
    message = problems_of(write_spec(folder, SPEC.replace("    spend_30d: {dtype: float, nullable: true}\n", "")))
    assert "features.views.0.features: ['spend_30d'] of view 'customer' are not schema columns" in message


def test_a_defaulted_key_column_that_would_be_a_feature_is_an_error(folder):
    text = SPEC.replace(", entity_column: customer_id, time_column: example_time", ", time_column: example_time")
    message = problems_of(write_spec(folder, text))
    assert "features.views.0.entity_column: 'customer_id' would be a feature" in message


def test_a_folder_reports_a_bad_view_file_and_the_specs_that_name_its_view(folder):
    (folder / "feature_views" / "customer.yaml").write_text(VIEW.replace("ttl: 60d", "ttl: 0d"))
    write_spec(folder, SPEC)
    specs, problems = read_specs(folder)
    messages = "\n".join(map(str, problems))
    assert specs == []
    assert "customer.yaml" in messages and "ttl: the ttl must be longer than zero" in messages
    assert "churn.yaml" in messages and "features.views.0.view: unknown view 'customer'" in messages
