"""Reading spec files: bounded YAML, every broken file reported apart from the good ones, and no input that
makes the loader fail with anything but a ``SpecError``, hang, import or run anything."""

import copy
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mlops_assets.errors import SpecError
from mlops_assets.spec import load_spec, load_specs, read_specs, safe_yaml
from mlops_assets.spec.safe_yaml import MAX_BYTES, MAX_DEPTH, MAX_VALUES, load_yaml

REPO = Path(__file__).resolve().parents[3]
BREAST_CANCER = (REPO / "pipelines" / "breast_cancer.yaml").read_text()
ISIN = "isin: [benign, malignant]"


def spec_error(path: Path) -> str:
    with pytest.raises(SpecError) as error:
        load_spec(path)
    assert str(path) in str(error.value)
    return str(error.value)


def with_isin(pipelines: Path, isin: str) -> Path:
    path = pipelines / "variant.yaml"
    path.write_text(BREAST_CANCER.replace(ISIN, f"isin: {isin}"))
    return path


def alias_bomb(levels: int, fan_out: int) -> str:
    """A flow list whose last anchor stands for ``fan_out ** levels`` values, in a few hundred bytes."""
    anchors = [f"&l0 [{', '.join(['x'] * fan_out)}]"]
    anchors += [f"&l{i} [{', '.join([f'*l{i - 1}'] * fan_out)}]" for i in range(1, levels)]
    return f"[benign, malignant, {', '.join(anchors)}]"


def test_an_alias_bomb_in_an_isin_list_is_refused_before_it_expands(pipelines):
    bomb = alias_bomb(levels=6, fan_out=10)
    assert len(bomb) < 500
    message = spec_error(with_isin(pipelines, bomb))
    assert f"at most {MAX_VALUES} values" in message and "counting each alias" in message


def test_a_few_aliases_that_stay_small_are_fine(pipelines):
    text = BREAST_CANCER.replace("  window: 200\n", "  window: &window 200\n")
    path = pipelines / "variant.yaml"
    path.write_text(text.replace("floor: 0.85, window: 200}", "floor: 0.85, window: *window}"))
    monitoring = load_spec(path).monitoring
    assert "*window" in path.read_text() and monitoring.performance.window == monitoring.window


def test_an_alias_inside_its_own_anchor_is_refused(pipelines):
    assert "an alias refers to a value that contains it" in spec_error(with_isin(pipelines, "&self [benign, *self]"))


def test_nesting_deeper_than_the_bound_is_refused_without_recursing(pipelines):
    deep = "[" * 5_000 + "]" * 5_000
    assert f"nested deeper than {MAX_DEPTH} levels" in spec_error(with_isin(pipelines, deep))


@pytest.mark.parametrize("parser", ["libyaml", "python"])
def test_libyaml_and_the_python_parser_read_specs_alike_within_the_same_bounds(pipelines, monkeypatch, parser):
    """Specs are parsed by libyaml where PyYAML has it, by PyYAML's Python parser otherwise."""
    assert (safe_yaml._FastParser is not safe_yaml._PythonParser) == yaml.__with_libyaml__
    if parser == "python":
        monkeypatch.setattr(safe_yaml, "_SpecLoader", safe_yaml._spec_loader(safe_yaml._PythonParser))
    for name in ("breast_cancer.yaml", "diabetes.yaml", "wine.yaml"):
        assert load_yaml(pipelines / name) == yaml.safe_load((pipelines / name).read_text())
    for too_deep in ("[" * 5_000 + "]" * 5_000, "[" * 40 + "]" * 40):
        assert f"nested deeper than {MAX_DEPTH} levels" in spec_error(with_isin(pipelines, too_deep))
    (pipelines / "block.yaml").write_text("- " * 40 + "x")
    assert f"nested deeper than {MAX_DEPTH} levels" in spec_error(pipelines / "block.yaml")
    assert f"at most {MAX_VALUES} values" in spec_error(with_isin(pipelines, alias_bomb(levels=6, fan_out=10)))
    assert "contains it" in spec_error(with_isin(pipelines, "&self [benign, *self]"))


def test_a_file_over_the_size_limit_is_refused(pipelines):
    path = pipelines / "variant.yaml"
    path.write_text(BREAST_CANCER.replace("description: ", f"description: {'x' * MAX_BYTES} "))
    assert f"larger than {MAX_BYTES} bytes" in spec_error(path)


def test_dates_stay_text_and_values_json_cannot_hold_are_refused(pipelines):
    spec = load_spec(with_isin(pipelines, "[benign, malignant, 2024-01-31]"))
    assert spec.schema_.columns["diagnosis"].isin == ["benign", "malignant", "2024-01-31"]
    assert load_spec(with_isin(pipelines, "[benign, 2001-13-45]")).schema_.columns["diagnosis"].isin[1] == "2001-13-45"
    for value in ("!!binary aGVsbG8=", "!!set {a: null}", "!!python/object/apply:os.getcwd []"):
        assert "not valid YAML" in spec_error(with_isin(pipelines, f"[benign, {value}]"))


@pytest.mark.parametrize("content", [b"\xff\xfe not utf-8 \xff", b"a: 1\n---\nb: 2\n", b"x: 1" + b"0" * 5000])
def test_unreadable_content_is_a_spec_error(pipelines, content):
    path = pipelines / "variant.yaml"
    path.write_bytes(content)
    spec_error(path)


def test_a_folder_named_like_a_spec_is_a_spec_error(pipelines):
    (pipelines / "folder.yaml").mkdir()
    assert "cannot be read" in spec_error(pipelines / "folder.yaml")


def test_read_specs_keeps_the_good_files_and_reports_each_broken_one(pipelines):
    (pipelines / "wine.yaml").write_text((pipelines / "wine.yaml").read_text().replace("task: multiclass", "task: x"))
    (pipelines / "twin.yaml").write_text((pipelines / "diabetes.yaml").read_text())
    specs, problems = read_specs(pipelines)
    assert [spec.name for spec, _ in specs] == ["breast_cancer"]
    assert sorted(Path(p.path).name for p in problems) == ["diabetes.yaml", "twin.yaml", "wine.yaml"]
    assert any("is also declared by ['twin.yaml']" in str(p) for p in problems)
    with pytest.raises(SpecError) as error:
        load_specs(pipelines)
    assert all(name in str(error.value) for name in ("diabetes.yaml", "twin.yaml", "wine.yaml"))


# --- property-based: whatever the file holds, the loader answers with a spec or a SpecError -------------

SYNTAX = [
    *"[]{},'\"#\t\n\x00é",
    ": ",
    "- ",
    "? ",
    "  ",
    "---\n",
    "...\n",
    "%YAML 1.1\n",
    "&a [x, x]\n",
    "*a\n",
    "<<: *a\n",
]
SPEC_LINES = ["name: x\n", "task: binary\n", "schema:\n", "  columns:\n", "    a: {dtype: float}\n", "model:\n"]
HOSTILE = [
    "  estimator: subprocess.Popen\n",
    "  estimator: builtins.eval\n",
    "  params: {args: [touch, /tmp/owned]}\n",
    "!!python/object/apply:os.system ['true']\n",
    "!!binary AAA=\n",
    "!!set {a}\n",
    "!!int x\n",
    "2024-13-45",
    "1e999",
    "0x" + "f" * 40,
    "9" * 5000,
    ".nan",
    "~",
]
FRAGMENTS = SYNTAX + SPEC_LINES + HOSTILE
IMPORT_PATHS = ["subprocess.Popen", "builtins.eval", "os.system", "sklearn.preprocessing.StandardScaler"]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=20),
    st.sampled_from(
        [*IMPORT_PATHS, "sklearn.linear_model.Ridge", "data/*.csv", "../../etc/passwd", "__import__('os')"]
    ),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8) | st.integers(), inner, max_size=4),
    max_leaves=20,
)
FUZZ = settings(
    max_examples=150,
    deadline=2_000,  # a hang fails as a deadline, a slow example is a finding
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],  # one folder, rewritten
)


@contextmanager
def nothing_imported_or_run():
    """Fail if loading imports a module or starts a process."""
    before = set(sys.modules)
    refuse = mock.Mock(side_effect=AssertionError("the spec loader started a process"))
    with mock.patch.object(subprocess, "Popen", refuse), mock.patch("os.system", refuse):
        yield
    assert set(sys.modules) - before == set()


def loads_or_refuses(path: Path) -> None:
    load_spec(REPO / "pipelines" / "breast_cancer.yaml")  # what the first load imports, imported outside the check
    with nothing_imported_or_run():
        try:
            spec = load_spec(path)
        except SpecError as exc:
            assert str(path) in str(exc)
            event("refused")
            return
    assert len(spec.spec_hash) == 16 and spec.feature_columns
    event("loaded")


@FUZZ
@given(st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=5), max_size=30).map("".join))
def test_any_text_loads_or_is_a_spec_error(pipelines, text):
    path = pipelines / "fuzz.yaml"
    path.write_text(text)
    loads_or_refuses(path)


@FUZZ
@given(VALUES)
def test_any_yaml_document_loads_or_is_a_spec_error(pipelines, document):
    path = pipelines / "fuzz.yaml"
    path.write_text(yaml.safe_dump(document))
    loads_or_refuses(path)


def paths(node, prefix=()):
    """Every key path into a parsed spec, the top included."""
    yield prefix
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, child in items:
        yield from paths(child, (*prefix, key))


VALID = {name: yaml.safe_load((REPO / "pipelines" / name).read_text()) for name in ("breast_cancer.yaml", "wine.yaml")}


@FUZZ
@given(st.sampled_from(sorted(VALID)), st.data())
def test_mutated_valid_specs_load_or_are_a_spec_error(pipelines, name, data):
    raw = copy.deepcopy(VALID[name])
    for _ in range(data.draw(st.integers(1, 3))):
        where = data.draw(st.sampled_from(list(paths(raw))))
        parent = raw
        for key in where[:-1]:
            parent = parent[key]
        action = data.draw(st.sampled_from(["replace", "delete", "add"]))
        if not where or action == "add":
            target = parent[where[-1]] if where else raw
            if isinstance(target, dict):
                target[data.draw(st.text(min_size=1, max_size=8))] = data.draw(VALUES)
        elif action == "delete" and isinstance(parent, dict):
            del parent[where[-1]]
        else:
            parent[where[-1]] = data.draw(VALUES)
    path = pipelines / "fuzz.yaml"
    path.write_text(yaml.safe_dump(raw))
    loads_or_refuses(path)


def test_a_component_defs_yaml_is_read_as_the_spec_in_its_attributes(pipelines):
    """The trainer and the endpoint read a component's spec again from its defs.yaml."""
    spec = yaml.safe_load(BREAST_CANCER)
    defs = pipelines / "defs.yaml"
    defs.write_text(yaml.safe_dump({"type": "mlops_assets.MLPipelineComponent", "attributes": spec}))
    assert load_spec(defs) == load_spec(pipelines / "breast_cancer.yaml")
    defs.write_text(yaml.safe_dump({"type": "mlops_assets.MLPipelineComponent", "attributes": {**spec, "task": 3}}))
    assert "task:" in spec_error(defs)
