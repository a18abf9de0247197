"""The logic of one scoring request without a socket or ASGI: bodies scored as the model's own predict scores
them, rows that break the schema rejected or flagged, malformed bodies refused, requests routed to the arms of
a rollout, and each counted where ``/admin/status`` and ``/metrics`` read it."""

import io

import orjson
import pytest

from mlops_assets.data.snapshot import read_source
from mlops_assets.naming import CHALLENGER, CHAMPION, Strategy
from mlops_assets.records import Rollout
from mlops_assets.serving.invocations import Invocation, Invocations
from mlops_assets.serving.loading import LoadedModel
from mlops_assets.serving.routing import choose_arm
from mlops_assets.serving.row_checks import REQUEST, column_rules
from mlops_assets.serving.settings import EndpointSettings
from mlops_assets.serving.state import ServingState
from mlops_assets.serving.telemetry import SCORING_ROUTE, Telemetry
from tests.conftest import REPO
from tests.unit.serving import test_telemetry
from tests.unit.serving.test_telemetry import DTYPES, SPEC

model = test_telemetry.model  # the fixture: version "7", a LogisticRegression fitted on breast_cancer
RULES = column_rules(SPEC.schema_.columns)  # mean_radius: {gt: 0, le: 50}
ROWS = read_source(SPEC, REPO / "pipelines").frame.head(5)
JSON = "application/json"


def record(**values) -> dict:
    """The first row's inputs, with ``values`` set."""
    return {**ROWS[list(DTYPES)].iloc[0].to_dict(), **values}


def records(*rows: dict) -> bytes:
    return orjson.dumps({"dataframe_records": list(rows) or [record()]})


def invocations(model: LoadedModel, **options) -> Invocations:
    settings = EndpointSettings(SPEC.name, DTYPES, lambda: model, schema=RULES, id_column=SPEC.id_column, **options)
    return Invocations(settings, Telemetry([SCORING_ROUTE], dict))


def predictions(scored: Invocation) -> list:
    assert scored.status == 200, scored.error
    return orjson.loads(scored.body)["predictions"]


def test_a_json_body_and_a_csv_body_are_scored_as_the_model_predicts_them(model):
    endpoint, state = invocations(model), ServingState().serving(model)
    sent = ROWS[[*DTYPES, SPEC.id_column]]
    split = {"columns": list(sent.columns), "data": sent.to_numpy().tolist()}
    as_json = endpoint.score(orjson.dumps({"dataframe_split": split}), JSON, state)
    csv = io.StringIO()
    sent.to_csv(csv, index=False)
    as_csv = endpoint.score(csv.getvalue().encode(), "text/csv; charset=utf-8", state)

    expected = model.model.predict(ROWS[list(DTYPES)]).labels.tolist()
    assert predictions(as_json) == predictions(as_csv) == expected
    assert as_json.version == "7" and as_json.n_rows == 5 and as_json.invalid is None
    assert as_json.columns[SPEC.id_column] == ROWS[SPEC.id_column].tolist()  # logged, so labels can join later
    assert as_json.shadow is None and as_json.features is None  # no shadow rollout, no skew sample
    assert endpoint.requests.accepted == 2 and endpoint.requests.rejected == 0
    assert state.arms[CHAMPION].requests == 2 and state.arms[CHAMPION].rows == 10
    assert endpoint.telemetry.rows_scored == {("7", CHAMPION): 10}


def test_a_row_that_breaks_the_schema_is_rejected_naming_its_column_or_scored_and_flagged(model):
    state = ServingState().serving(model)
    body = records(record(), record(mean_radius=80.0))

    strict = invocations(model)
    rejected = strict.score(body, JSON, state)
    assert rejected.status == 400 and rejected.body == b"" and rejected.version is None
    assert "1 of 2 row(s) break the schema: row 1, column 'mean_radius': le 50" in rejected.error
    assert strict.requests.rejected == 1 and strict.requests.accepted == 0
    assert strict.requests.last_rejection == rejected.error
    assert list(strict.telemetry.rejections) == [("mean_radius", "le 50")]
    assert state.arms[CHAMPION].requests == 0  # never routed nor scored

    lenient = invocations(model, on_invalid="flag")
    flagged = lenient.score(body, JSON, state)
    assert len(predictions(flagged)) == 2
    assert flagged.invalid[0] is None and "mean_radius" in flagged.invalid[1]
    assert lenient.requests.invalid_rows == 1 and lenient.requests.accepted == 1


@pytest.mark.parametrize(
    ("body", "content_type", "said"),
    [
        (b"{not json", JSON, "JSON"),
        (b"", JSON, "empty request body"),
        (orjson.dumps({"rows": []}), JSON, "exactly one of the keys"),
        (b"mean_radius\n14.0\n", "text/csv", "missing column"),
    ],
)
def test_a_malformed_body_is_a_400_saying_what_is_wrong(model, body, content_type, said):
    endpoint = invocations(model)
    scored = endpoint.score(body, content_type, ServingState().serving(model))
    assert scored.status == 400 and said in scored.error
    assert endpoint.requests.rejected == 1 and endpoint.telemetry.rejected_requests == 1
    if said != "missing column":  # a body that is no set of columns at all, counted as such
        assert next(iter(endpoint.telemetry.rejections))[0] == REQUEST


@pytest.mark.parametrize("mode", [Strategy.canary, Strategy.ab])
def test_a_rollout_routes_each_sticky_key_to_its_arm_and_the_challenger_answers_for_its_own(model, mode):
    challenger = LoadedModel("8", model.model)
    rollout = Rollout(mode, "8", share=0.5, sticky_key="user")
    state = ServingState().serving(model).rolling_out(rollout, challenger)
    endpoint = invocations(model)
    users = [f"user-{i}" for i in range(20)]
    arms = [choose_arm(rollout, user) for user in users]
    assert {CHAMPION, CHALLENGER} <= set(arms)

    for user, arm in zip(users, arms, strict=True):
        scored = endpoint.score(records(record(user=user)), JSON, state)
        assert scored.version == ("8" if arm == CHALLENGER else "7") and scored.shadow is None
    assert state.arms[CHALLENGER].requests == arms.count(CHALLENGER)
    assert state.arms[CHAMPION].requests == arms.count(CHAMPION)
    assert endpoint.telemetry.rows_scored[("8", CHALLENGER)] == arms.count(CHALLENGER)
    assert endpoint.requests.ignored_columns == {}  # the sticky key is the rollout's, not a column ignored


def test_a_shadow_rollout_answers_with_the_champion_and_scores_a_copy_with_the_challenger(model):
    state = ServingState().serving(model).rolling_out(Rollout(Strategy.shadow, "8"), LoadedModel("8", model.model))
    endpoint = invocations(model)
    scored = endpoint.score(records(), JSON, state)
    assert scored.version == "7" and scored.shadow.version == "8"

    shadow = endpoint.shadow(scored, state.arms[CHALLENGER])  # what the transport calls once it has answered
    assert shadow.labels.tolist() == scored.labels
    assert state.arms[CHALLENGER].rows == 1 and state.arms[CHALLENGER].disagreements == 0
    assert endpoint.telemetry.rows_scored == {("7", CHAMPION): 1, ("8", "shadow"): 1}


def test_a_model_that_fails_to_predict_is_a_500_counted_against_its_arm(model):
    class Broken:
        version = "9"

        def predict(self, columns, n_rows):
            raise ValueError("boom")

    state = ServingState().serving(Broken())
    scored = invocations(model).score(records(), JSON, state)
    assert scored.status == 500 and scored.error == "model version 9 failed to predict: boom"
    assert state.arms[CHAMPION].errors == 1


def test_the_skew_sample_keeps_the_features_of_the_first_request_and_one_in_every_after(model):
    endpoint, state = invocations(model, skew_sample_every=2), ServingState().serving(model)
    sampled = [endpoint.score(records(), JSON, state).features is not None for _ in range(4)]
    assert sampled == [True, False, True, False]
