"""Feature view files load into typed views, and every problem of a file is reported at once, naming the file
and the field."""

from datetime import timedelta

import pytest

from mlops_assets.spec.feature_view import (
    FeatureViewError,
    ViewReference,
    load_feature_view,
    load_feature_views,
    reference_problems,
)

GOOD = """\
name: customers
entity: customer_id
timestamp: event_time
source: {path: customers.csv}
features: [age]
derived: {spend_per_order: spend / orders}
aggregations:
  - {column: spend, function: sum, window: 30d}
  - {column: spend, function: count, window: 12h, name: recent_orders}
ttl: 90d
"""


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "customers.csv").write_text("customer_id,event_time,age,spend,orders\n1,2025-01-01,30,3.0,1\n")
    return tmp_path


def write(folder, name, text):
    path = folder / name
    path.write_text(text)
    return path


def test_a_view_file_loads_with_its_durations_and_feature_names(folder):
    view = load_feature_view(write(folder, "customers.yaml", GOOD))
    assert view.ttl == timedelta(days=90)
    assert view.feature_names == ["age", "spend_per_order", "spend_sum_30d", "recent_orders"]
    assert view.source_columns == {"customer_id", "event_time", "age", "spend", "orders"}


def test_every_problem_of_a_file_is_reported_with_its_field_and_the_file(folder):
    bad = GOOD.replace("name: customers", "name: Customers").replace("customers.csv", "nothing.csv")
    bad = bad.replace("function: sum", "function: median").replace("ttl: 90d", "ttl: 0d\nowner: me")
    path = write(folder, "bad.yaml", bad)
    with pytest.raises(FeatureViewError) as caught:
        load_feature_view(path)
    message = str(caught.value)
    assert str(path) in message and message.startswith("invalid feature view")
    assert "name: String should match pattern" in message
    assert "source.path: no file matches 'nothing.csv'" in message
    assert "aggregations.0.function: Input should be 'count', 'sum' or 'mean'" in message
    assert "ttl: the ttl must be longer than zero" in message
    assert "(top level): unknown field(s) 'owner'; allowed: name, description, entity" in message


def test_a_key_column_listed_as_a_feature_is_an_error_naming_the_feature(folder):
    path = write(folder, "v.yaml", GOOD.replace("features: [age]", "features: [age, customer_id]"))
    with pytest.raises(FeatureViewError, match=r"features\.1: 'customer_id' is the view's entity column"):
        load_feature_view(path)


def test_a_source_is_files_or_a_query_not_both(folder):
    path = write(folder, "v.yaml", GOOD.replace("{path: customers.csv}", "{path: customers.csv, sql: select 1}"))
    with pytest.raises(FeatureViewError, match=r"source: .*exactly one of `path`"):
        load_feature_view(path)


def test_a_folder_refuses_views_that_share_a_name_and_names_each_bad_file(folder):
    write(folder, "a.yaml", GOOD)
    write(folder, "b.yaml", GOOD)
    write(folder, "c.yaml", GOOD.replace("name: customers", "name: other").replace("entity: customer_id\n", ""))
    with pytest.raises(FeatureViewError) as caught:
        load_feature_views(folder)
    message = str(caught.value)
    assert "a.yaml" in message and "is also declared by ['b.yaml']" in message
    assert "c.yaml" in message and "entity: required field is missing" in message


def test_a_folder_of_good_views_loads_by_name(folder):
    write(folder, "customers.yaml", GOOD)
    write(folder, "devices.yml", GOOD.replace("name: customers", "name: devices"))
    assert sorted(load_feature_views(folder)) == ["customers", "devices"]


def test_an_expression_outside_the_grammar_is_an_error_naming_the_derived_feature(folder):
    path = write(folder, "v.yaml", GOOD.replace("spend / orders", "__import__('os')"))
    with pytest.raises(FeatureViewError, match=r"derived\.spend_per_order: unknown function '__import__'"):
        load_feature_view(path)


def test_a_reference_to_an_unknown_view_or_feature_names_the_field_and_what_is_known(folder):
    views = {"customers": load_feature_view(write(folder, "customers.yaml", GOOD))}
    references = [
        ViewReference(view="customers", features=["age", "shoe_size"]),
        ViewReference(view="devices"),
        ViewReference(view="customers"),
    ]
    assert reference_problems(references, views, "features.views") == [
        "features.views.0.features: ['shoe_size'] are not features of view 'customers': "
        "['age', 'spend_per_order', 'spend_sum_30d', 'recent_orders']",
        "features.views.1.view: unknown view 'devices'; known: ['customers']",
    ]
