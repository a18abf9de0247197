"""deploy/helm/dagster-values.yaml against the Dagster chart's own values.schema.json, offline.

The schema is vendored beside this file (dagster_chart_values.schema.source.txt names its commit and how old it
is). Its ``$ref``s to kubernetesjsonschema.dev resolve to kubernetes-validate's bundled Kubernetes definitions, so
the Kubernetes parts of the values (resources, affinity, securityContext, env) are checked strictly too.

Helm validates the values merged over the chart's defaults; this file holds only our overrides. Maps merge key by
key, so a key the chart requires may be missing here (its default fills it in); lists replace the default whole,
so each list item keeps every key the chart requires. ``as_overrides`` applies exactly that to the schema.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from importlib.resources import files
from pathlib import Path

import jsonschema
import pytest
import yaml
from referencing import Registry, Resource
from referencing.exceptions import Unresolvable

from tests.unit.deploy.test_manifests import KUBERNETES_VERSION, REPO

HERE = Path(__file__).parent
SCHEMA = HERE / "dagster_chart_values.schema.json"
SOURCE = HERE / "dagster_chart_values.schema.source.txt"
VALUES = REPO / "deploy" / "helm" / "dagster-values.yaml"
KUBERNETES_DEFINITIONS = "https://kubernetesjsonschema.dev/v1.18.0/_definitions.json"
LOCAL = "#/definitions/"
# The schema's own style (pydantic's `definitions`) is draft 7; the bundled Kubernetes definitions are 2020-12.
VALIDATORS = (jsonschema.Draft7Validator, jsonschema.Draft202012Validator)


def chart_schema() -> dict:
    return json.loads(SCHEMA.read_text())


def values() -> dict:
    return yaml.safe_load(VALUES.read_text())


def kubernetes_registry() -> Registry:
    """The chart's Kubernetes URL served from kubernetes-validate's files; nothing is fetched (a Registry without a
    ``retrieve`` function answers an unknown URL with Unresolvable)."""
    folder = f"kubernetes-json-schema/v{KUBERNETES_VERSION}-local-strict"
    bundled = json.loads((files("kubernetes_validate") / folder / "_definitions.json").read_text())
    # The chart asks for "#/definitions/<name>"; the bundled file keeps its definitions under "$defs" and refers to
    # them as "#/$defs/<name>". One document under both names answers both, at the chart's URL.
    document = {"$schema": bundled["$schema"], "$defs": bundled["$defs"], "definitions": bundled["$defs"]}
    return Registry().with_resource(KUBERNETES_DEFINITIONS, Resource.from_contents(document))


def as_overrides(schema: dict) -> dict:
    """``schema`` for a values file Helm merges over the chart's defaults: ``required`` dropped where the value is
    merged into the defaults, kept inside list items (the chart's local definitions are inlined, so one definition
    can be relaxed where it is merged and kept whole where it is an item)."""
    definitions = schema["definitions"]

    def walk(node, merged: bool):
        if isinstance(node, list):
            return [walk(item, merged) for item in node]
        if not isinstance(node, dict):
            return node
        if node.get("$ref", "").startswith(LOCAL):
            node = {**definitions[node["$ref"].removeprefix(LOCAL)], "title": node.get("title")}
        out = {}
        for key, value in node.items():
            if key == "required" and merged:
                continue
            if key in ("properties", "patternProperties"):
                out[key] = {name: walk(sub, merged) for name, sub in value.items()}
            elif key == "items":
                out[key] = walk(value, merged=False)
            elif key not in ("definitions", "enum", "const", "default"):
                out[key] = walk(value, merged)
            else:
                out[key] = value
        return out

    return walk({key: value for key, value in schema.items() if key != "definitions"}, merged=True)


def problems(instance: dict, schema: dict, validator=jsonschema.Draft7Validator) -> list[str]:
    """Every error, those under an ``anyOf`` included (the chart wraps optional objects in one)."""
    checker = validator(schema, registry=kubernetes_registry())

    def leaves(error: jsonschema.ValidationError) -> list[str]:
        if error.context:
            return [leaf for sub in error.context for leaf in leaves(sub)]
        return [f"{error.json_path}: {error.message}"]

    return [leaf for error in checker.iter_errors(instance) for leaf in leaves(error)]


def remote_refs(node) -> set[str]:
    if isinstance(node, list):
        return {ref for item in node for ref in remote_refs(item)}
    if not isinstance(node, dict):
        return set()
    own = {node["$ref"]} if not node.get("$ref", LOCAL).startswith(LOCAL) else set()
    return own | {ref for value in node.values() for ref in remote_refs(value)}


def test_the_vendored_schema_is_the_file_its_source_note_names():
    note = SOURCE.read_text()
    assert re.search(r"commit\s+[0-9a-f]{40}\b", note)
    (recorded,) = re.findall(r"sha256\s+([0-9a-f]{64})\b", note)
    assert hashlib.sha256(SCHEMA.read_bytes()).hexdigest() == recorded
    assert chart_schema()["title"] == "DagsterHelmValues"


def test_every_remote_ref_resolves_offline_to_a_bundled_kubernetes_definition():
    refs = remote_refs(chart_schema())
    assert refs and all(ref.startswith(KUBERNETES_DEFINITIONS + "#/definitions/") for ref in refs)
    resolver = kubernetes_registry().resolver()
    for ref in refs:
        assert isinstance(resolver.lookup(ref).contents, dict), ref
    with pytest.raises(Unresolvable):  # anything else would need the network, and is refused
        resolver.lookup("https://kubernetesjsonschema.dev/v1.18.0/deployment.json")


@pytest.mark.parametrize("validator", VALIDATORS, ids=lambda v: v.__name__)
def test_the_helm_values_validate_against_the_charts_schema(validator):
    assert problems(values(), as_overrides(chart_schema()), validator) == []


def test_relaxing_the_schema_drops_only_keys_the_chart_defaults_supply():
    # Against the schema as is, the values lack only top-level and merged keys, never a list item's.
    # (an optional object is "X or null": the null branch's complaint says nothing)
    unrelaxed = [p for p in problems(values(), chart_schema()) if not p.endswith("is not of type 'null'")]
    assert unrelaxed and all(p.endswith("is a required property") for p in unrelaxed)
    assert not [p for p in unrelaxed if "deployments[" in p]


def _set(document: dict, path: str, value) -> dict:
    broken = copy.deepcopy(document)
    *parents, leaf = path.split(".")
    node = broken
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if value is None:
        del node[leaf]
    else:
        node[leaf] = value
    return broken


# Each broken copy: the key path changed (None: removed), the new value, and what the schema must say about it.
BROKEN = {
    # a misspelt key under a closed object of the chart (additionalProperties: false)
    "misspelt run launcher key": (
        "runLauncher.config.k8sRunLauncher.loadInClusterConfig",
        True,
        "('loadInClusterConfig' was unexpected)",
    ),
    "misspelt daemon key": ("dagsterDaemon.runRetry", {"enabled": True}, "('runRetry' was unexpected)"),
    # a wrong type and a value outside an enumeration
    "run monitoring as a string": ("dagsterDaemon.runMonitoring", "enabled", "'enabled' is not of type 'object'"),
    "unknown run launcher": ("runLauncher.type", "K8sJobLauncher", "'K8sJobLauncher' is not one of"),
    # a list item keeps the keys the chart requires: no default fills them in
    "code location without a port": (
        "dagster-user-deployments.deployments.0.port",
        None,
        "'port' is a required property",
    ),
    # the Kubernetes parts go through the bundled definitions (strict): a misspelt field of ResourceRequirements
    "misspelt container resources": (
        "dagster-user-deployments.deployments.0.resources",
        {"limit": {"cpu": "1"}},
        "('limit' was unexpected)",
    ),
}


@pytest.mark.parametrize("validator", VALIDATORS, ids=lambda v: v.__name__)
@pytest.mark.parametrize("case", BROKEN, ids=str)
def test_a_broken_copy_of_the_values_fails_and_says_why(case, validator):
    path, value, message = BROKEN[case]
    found = problems(_set(values(), path, value), as_overrides(chart_schema()), validator)
    assert any(message in p for p in found), found
