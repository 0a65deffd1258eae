"""The online-learning routes in the OpenAPI document, held against the real routes.

``online_host`` serves the example online plugins (``plugins_example/river_models``)
next to ``demo``; every response below is validated against the schema its own
document gives for the path, method, status and media type.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests
from conftest import Host, launch
from openapi_spec_validator import validate as validate_spec

from deepaas_host.api import create_app
from deepaas_host.api.openapi import build_openapi
from deepaas_host.api.routes import docs
from deepaas_host.auth.scopes import Scope, required_scope
from deepaas_host.model.discovery import load_plugins
from deepaas_host.model.online import FLAVORS
from deepaas_host.settings import Settings

from .test_spec_conformance import URI, Conformance, pointer

ONLINE_PLUGINS = ("trump-approval", "phishing", "image-segments", "text-clusters", "running-mean")
TRUMP_FEATURES = {
    "ordinal_date": 736389,
    "gallup": 43.84,
    "ipsos": 46.2,
    "morning_consult": 48.32,
    "rasmussen": 44.1,
    "you_gov": 43.64,
}
BASE = "/v2/online/"
MODEL = "/v2/online/{name}"
#: Every documented online operation (only the slash-terminated form of the actions).
OPERATIONS = {
    BASE: {"get", "post"},
    MODEL: {"get", "delete"},
    f"{MODEL}/repair": {"post"},
    f"{MODEL}/download": {"get"},
    f"{MODEL}/predict/": {"post"},
    f"{MODEL}/learn/": {"post"},
    f"{MODEL}/label/": {"post"},
    f"{MODEL}/bulk/": {"post"},
    f"{MODEL}/metrics": {"get"},
    f"{MODEL}/stats": {"get"},
    f"{MODEL}/stream/metrics": {"get"},
    f"{MODEL}/stream/events": {"get"},
}
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@pytest.fixture(scope="module")
def online_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    tmp = tmp_path_factory.mktemp("online")
    args = ["--workers", "1", "--no-train", "--model", "demo"]
    for name in ONLINE_PLUGINS:
        args += ["--model", name]
    h = launch(tmp, args)
    yield h
    h.stop()


@pytest.fixture(scope="module")
def online_spec(online_host: Host) -> dict[str, Any]:
    document: dict[str, Any] = online_host.get("/v2/openapi.json").json()
    return document


@pytest.fixture(scope="module")
def bare_spec() -> dict[str, Any]:
    """The document of a host without online plugins (the routes exist all the same)."""
    return build_openapi(Settings(), [], online=[])


@pytest.fixture(scope="module")
def conformance(online_spec: dict[str, Any]) -> Conformance:
    return Conformance(online_spec)


def online_paths(document: dict[str, Any]) -> dict[str, set[str]]:
    return {
        path: {m for m in METHODS if m in item}
        for path, item in document["paths"].items()
        if path.startswith(BASE)
    }


# the document -------------------------------------------------------------------------


def test_documents_validate_with_and_without_online_plugins(
    online_spec: dict[str, Any], bare_spec: dict[str, Any], spec: dict[str, Any]
) -> None:
    """``spec`` is the session host's."""
    for document in (online_spec, bare_spec, spec):
        validate_spec(document)
        assert online_paths(document) == OPERATIONS
        tags = [t["name"] for t in document["tags"]]
        assert tags.count("online") == 1
        for path, methods in OPERATIONS.items():
            for method in methods:
                op = document["paths"][path][method]
                assert op["tags"] == ["online"]
                assert op["operationId"].startswith("online_")
    # the installed plugins are named where the model name is asked for
    name = online_spec["paths"][MODEL]["get"]["parameters"][0]
    assert name == {**name, "name": "name", "in": "path", "required": True}
    assert name["schema"]["type"] == "string"
    for plugin in ONLINE_PLUGINS:
        assert f"`{plugin}`" in name["description"]
    assert (
        "No online plugin is installed"
        in bare_spec["paths"][MODEL]["get"]["parameters"][0]["description"]
    )


def test_every_online_route_is_documented(tmp_path: Path) -> None:
    """The routes the app registers (in-process, no workers started) against its document."""
    plugins, failures = load_plugins(list(ONLINE_PLUGINS))
    assert not failures
    app = create_app(Settings(data_dir=tmp_path), plugins=plugins)
    document = app[docs.SPEC]
    routed: dict[str, set[str]] = {}
    for route in app.router.routes():
        resource = route.resource
        if resource is None or not resource.canonical.startswith(BASE):
            continue
        routed.setdefault(resource.canonical, set()).add(route.method.lower())
    documented = online_paths(document)
    for path, methods in routed.items():
        if path not in documented:
            # predict, learn, label and bulk are routed with and without the final slash
            assert path.rsplit("/", 1)[-1] in ("predict", "learn", "label", "bulk"), path
            path += "/"
        assert documented[path] == methods, path
    assert set(documented) <= set(routed)


@pytest.mark.parametrize("which", ["online", "bare"])
def test_security_marking_follows_required_scope(
    which: str, online_spec: dict[str, Any], bare_spec: dict[str, Any]
) -> None:
    document = online_spec if which == "online" else bare_spec
    schemes = set(document["components"]["securitySchemes"])
    seen: dict[str, int] = {}
    for path, methods in online_paths(document).items():
        for method in methods:
            op = document["paths"][path][method]
            needed = required_scope(method, path)
            assert needed is not None, (method, path)
            assert op["x-required-scope"] == needed.value, (method, path)
            assert {name for req in op["security"] for name in req} == schemes
            assert "401" in op["responses"]
            if needed is Scope.MANAGE:
                assert "403" in op["responses"], (method, path)
            seen[needed.value] = seen.get(needed.value, 0) + 1
    # creating, deleting and repairing need manage; reading and the events need predict
    assert seen == {"manage": 3, "predict": 11}
    assert document["paths"][BASE]["post"]["x-required-scope"] == "manage"
    assert document["paths"][MODEL]["delete"]["x-required-scope"] == "manage"
    assert document["paths"][f"{MODEL}/repair"]["post"]["x-required-scope"] == "manage"
    assert required_scope("POST", f"{MODEL}/repair") is Scope.MANAGE
    for action in ("predict", "learn", "label", "bulk"):
        assert document["paths"][f"{MODEL}/{action}/"]["post"]["x-required-scope"] == "predict"


def test_request_bodies_media_types_and_examples(
    online_spec: dict[str, Any], bare_spec: dict[str, Any]
) -> None:
    paths = online_spec["paths"]
    checker = Conformance(online_spec)
    create = paths[BASE]["post"]["requestBody"]["content"]
    assert set(create) == {"application/json", "multipart/form-data"}
    assert set(create["application/json"]["schema"]["properties"]) == {
        "plugin",
        "name",
        "description",
        "flavor",
    }
    multipart = create["multipart/form-data"]["schema"]["properties"]
    assert {"file", "flavor", "name", "description"} <= set(multipart)
    assert multipart["file"] == {**multipart["file"], "type": "string", "format": "binary"}
    assert multipart["flavor"]["enum"] == list(FLAVORS)
    assert create["application/json"]["example"]["plugin"] in ONLINE_PLUGINS
    assert paths[BASE]["post"]["responses"]["201"]["headers"]["Location"]
    for code in ("400", "403", "409", "413", "415", "422"):
        assert code in paths[BASE]["post"]["responses"], code

    download = paths[f"{MODEL}/download"]["get"]["responses"]["200"]
    assert download["content"] == {
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
    }
    assert "X-Checksum-SHA256" in download["headers"]

    for kind in ("predict", "learn", "label"):
        op = paths[f"{MODEL}/{kind}/"]["post"]
        assert op["requestBody"]["required"] is True
        media = op["requestBody"]["content"]["application/json"]
        assert media["schema"] == {"$ref": f"#/components/schemas/Online{kind.title()}Request"}
        for code in ("400", "404", "413", "422", "500", "502", "503"):
            assert code in op["responses"], (kind, code)
        assert "PredictionNotFound" in op["responses"]["404"]["description"] or kind == "predict"
        # examples with the plugins' own features, each valid against the request schema
        schema = {"$ref": URI + media["schema"]["$ref"]}
        for example in media["examples"].values():
            checker.validate(example["value"], schema)
        # without plugin examples, a generic example, valid too
        generic = bare_spec["paths"][f"{MODEL}/{kind}/"]["post"]["requestBody"]["content"][
            "application/json"
        ]["examples"]
        assert "generic" in generic
        for example in generic.values():
            checker.validate(example["value"], schema)
    predict_examples = paths[f"{MODEL}/predict/"]["post"]["requestBody"]["content"][
        "application/json"
    ]["examples"]
    assert predict_examples["trump-approval"]["value"]["features"] == TRUMP_FEATURES
    assert "phishing" in predict_examples
    # plugins without example features get none; a clustering model takes no label
    assert "image-segments" not in predict_examples and "generic" not in predict_examples
    label_examples = paths[f"{MODEL}/label/"]["post"]["requestBody"]["content"]["application/json"][
        "examples"
    ]
    assert set(label_examples) == {"trump-approval", "phishing"}

    bulk = paths[f"{MODEL}/bulk/"]["post"]
    assert set(bulk["requestBody"]["content"]) == {"application/x-ndjson"}
    assert set(bulk["responses"]["200"]["content"]) == {"application/x-ndjson"}
    op_param = next(p for p in bulk["parameters"] if p["name"] == "op")
    assert op_param["in"] == "query"
    assert op_param["schema"]["enum"] == ["learn", "predict", "label"]
    for line in bulk["requestBody"]["content"]["application/x-ndjson"]["example"].splitlines():
        assert json.loads(line)["features"] == TRUMP_FEATURES

    for stream in ("metrics", "events"):
        op = paths[f"{MODEL}/stream/{stream}"]["get"]
        assert set(op["responses"]["200"]["content"]) == {"text/event-stream"}
    interval = paths[f"{MODEL}/stream/metrics"]["get"]["parameters"][1]
    assert interval["name"] == "interval" and interval["in"] == "query"


def test_the_spec_states_what_is_enforced(online_spec: dict[str, Any]) -> None:
    paths, schemas = online_spec["paths"], online_spec["components"]["schemas"]
    for kind in ("predict", "learn", "label"):
        responses = paths[f"{MODEL}/{kind}/"]["post"]["responses"]
        assert "InsufficientStorage" in responses["507"]["description"]
        for error in ("OnlineModelDamaged", "StorageUnavailable", "Overloaded"):
            assert error in responses["503"]["description"], (kind, error)
        assert "finite" in responses["422"]["description"]
        assert "max_features" in responses["422"]["description"]
    for path, method in (
        (MODEL, "get"),
        (f"{MODEL}/metrics", "get"),
        (f"{MODEL}/stream/events", "get"),
    ):
        assert "OnlineModelDamaged" in paths[path][method]["responses"]["503"]["description"]
    assert "507" in paths[BASE]["post"]["responses"]
    # ground truth per flavor, finite features, nullable values
    truth = schemas["OnlineLearnRequest"]["properties"]["ground_truth"]
    assert [a["title"] for a in truth["anyOf"]] == [
        "regression",
        "binary, multiclass",
        "anomaly",
        "custom",
    ]
    assert truth["anyOf"][2]["anyOf"][1] == {"type": "integer", "enum": [0, 1]}
    assert "clustering none" in truth["description"]
    features = schemas["OnlinePredictRequest"]["properties"]["features"]
    assert "NaN" in features["description"] and "max_feature_names" in features["description"]
    prediction = schemas["OnlinePrediction"]["properties"]
    assert prediction["prediction"]["nullable"] is True
    assert prediction["probabilities"]["additionalProperties"]["nullable"] is True
    assert prediction["kept"]["enum"] == [False]
    # the way out of damage
    repair = paths[f"{MODEL}/repair"]["post"]
    assert repair["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/OnlineRepair"
    }
    assert {"403", "404", "409", "503", "507"} <= set(repair["responses"])
    listing = paths[BASE]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert "damaged" in listing["required"]
    health = schemas["Health"]["properties"]["damaged"]
    assert health["items"] == {"$ref": "#/components/schemas/OnlineDamagedModel"}


def test_the_checker_rejects_what_the_online_spec_forbids(conformance: Conformance) -> None:
    predict = conformance.schema_of(f"{MODEL}/predict/", "post", 200, "application/json")
    learn = conformance.schema_of(f"{MODEL}/learn/", "post", 200, "application/json")
    metrics = conformance.schema_of(f"{MODEL}/metrics", "get", 200, "application/json")
    stats = conformance.schema_of(f"{MODEL}/stats", "get", 200, "application/json")
    info = conformance.schema_of(MODEL, "get", 200, "application/json")
    bad = [
        (predict, {"prediction": 1.0}),  # no model
        (predict, {"model": "m"}),  # no prediction
        (predict, {"model": "m", "prediction": 1, "probabilities": {"a": "high"}}),
        (learn, {"model": "m", "prediction": 1.0, "seq": 1}),
        (learn, {"model": "m", "prediction": None, "seq": -1, "learned": 0}),
        (metrics, {"model": "m", "flavor": "tasty", "learned": 0}),
        (metrics, {"model": "m", "flavor": "binary", "learned": 0, "overall": {"F1": "x"}}),
        (stats, {"model": "m", "predict": {}, "learn": {}, "label": {}, "totals": {}}),
        (info, {"name": "m", "flavor": "binary"}),
    ]
    for schema, instance in bad:
        with pytest.raises(jsonschema.ValidationError):
            conformance.validate(instance, schema)
    conformance.validate({"model": "m", "prediction": None, "seq": 1, "learned": 1}, learn)


# real responses -----------------------------------------------------------------------


def post(host: Host, kind: str, name: str, body: Any) -> requests.Response:
    return host.post(f"/v2/online/{name}/{kind}/", json=body)


def test_predict_learn_label_conform(online_host: Host, conformance: Conformance) -> None:
    h = online_host
    results: dict[str, Any] = {}
    for name, features, truth in (
        ("trump-approval", TRUMP_FEATURES, 43.5),
        ("phishing", {"https": 1.0, "long_url": 0.0}, True),
        ("image-segments", {"region-centroid-col": 218.0, "hue-mean": -2.0}, "path"),
        ("running-mean", {"x": 1}, 2.0),
    ):
        learned = post(h, "learn", name, {"features": features, "ground_truth": truth})
        assert learned.status_code == 200, learned.text
        body = conformance.check(learned, f"{MODEL}/learn/", "post")
        assert body["model"] == name and body["learned"] >= 1

        ident = f"{name}-kept"
        predicted = post(h, "predict", name, {"features": features, "id": ident})
        assert predicted.status_code == 200, predicted.text
        body = conformance.check(predicted, f"{MODEL}/predict/", "post")
        assert body["id"] == ident
        results[name] = body

        unkept = post(h, "predict", name, {"features": features, "keep": False})
        assert "seq" not in conformance.check(unkept, f"{MODEL}/predict/", "post")

        labelled = post(h, "label", name, {"id": ident, "ground_truth": truth})
        assert labelled.status_code == 200, labelled.text
        conformance.check(labelled, f"{MODEL}/label/", "post")

        # learn from a kept prediction by its id alone
        post(h, "predict", name, {"features": features, "id": f"{ident}-2"})
        by_id = post(h, "learn", name, {"id": f"{ident}-2", "ground_truth": truth})
        assert by_id.status_code == 200, by_id.text
        conformance.check(by_id, f"{MODEL}/learn/", "post")
    assert set(results["phishing"]["probabilities"]) == {"true", "false"}

    # a clustering model learns without ground truth and predicts a cluster from a text
    learned = post(h, "learn", "text-clusters", {"features": "river flows to the sea"})
    conformance.check(learned, f"{MODEL}/learn/", "post")
    predicted = post(h, "predict", "text-clusters", {"features": "the sea"})
    assert isinstance(conformance.check(predicted, f"{MODEL}/predict/", "post")["prediction"], int)


def test_errors_conform(online_host: Host, conformance: Conformance) -> None:
    h = online_host
    cases = [
        (404, "OnlineModelNotFound", "predict", "nope", {"features": {"x": 1}}),
        (404, "PredictionNotFound", "label", "phishing", {"id": "never", "ground_truth": True}),
        (404, "PredictionNotFound", "learn", "phishing", {"id": "never", "ground_truth": True}),
        (422, "ArgumentError", "predict", "phishing", {"features": [1, 2]}),
        (422, "ArgumentError", "learn", "trump-approval", {"features": {"x": 1}}),
        (422, "ArgumentError", "label", "text-clusters", {"id": "a", "ground_truth": 1}),
        (422, "ArgumentError", "predict", "phishing", {"features": {}, "extra": 1}),
        (422, "ArgumentError", "predict", "phishing", []),
    ]
    for status, error, kind, name, body in cases:
        r = post(h, kind, name, body)
        assert r.status_code == status, r.text
        assert conformance.check(r, f"{MODEL}/{kind}/", "post")["error"] == error
    r = h.post(
        "/v2/online/phishing/learn/", data=b"{", headers={"Content-Type": "application/json"}
    )
    assert conformance.check(r, f"{MODEL}/learn/", "post")["code"] == 400
    for path, template in (
        ("/v2/online/nope", MODEL),
        ("/v2/online/nope/metrics", f"{MODEL}/metrics"),
        ("/v2/online/nope/stats", f"{MODEL}/stats"),
        ("/v2/online/nope/download", f"{MODEL}/download"),
        ("/v2/online/nope/stream/events", f"{MODEL}/stream/events"),
    ):
        r = h.get(path)
        assert r.status_code == 404, (path, r.text)
        conformance.check(r, template)
    r = h.get("/v2/online/phishing/stream/metrics", params={"interval": "0"})
    assert conformance.check(r, f"{MODEL}/stream/metrics")["code"] == 422
    r = h.post("/v2/online/phishing/bulk/", params={"op": "forget"}, data=b"")
    assert conformance.check(r, f"{MODEL}/bulk/", "post")["code"] == 422


def test_info_metrics_stats_conform(online_host: Host, conformance: Conformance) -> None:
    h = online_host
    post(h, "learn", "trump-approval", {"features": TRUMP_FEATURES, "ground_truth": 44.0})
    listing = conformance.check(h.get(BASE), BASE)
    assert {m["name"] for m in listing["models"]} >= set(ONLINE_PLUGINS)
    assert {p["name"] for p in listing["plugins"]} == set(ONLINE_PLUGINS)
    for name in ONLINE_PLUGINS:
        info = conformance.check(h.get(f"/v2/online/{name}"), MODEL)
        assert info["name"] == name and info["plugin"] == name
        assert info["links"]["self"] == f"{h.url}/v2/online/{name}"
        metrics = conformance.check(h.get(f"/v2/online/{name}/metrics"), f"{MODEL}/metrics")
        assert metrics["model"] == name and metrics["flavor"] == info["flavor"]
        stats = conformance.check(h.get(f"/v2/online/{name}/stats"), f"{MODEL}/stats")
        assert stats["totals"]["learned"] == info["learned"] or name == "trump-approval"
    metrics = h.get("/v2/online/trump-approval/metrics").json()
    assert metrics["learned"] >= 1 and set(metrics["overall"]) == {"MAE", "RMSE", "R2"}
    stats = h.get("/v2/online/trump-approval/stats").json()
    assert stats["learn"]["count"] >= 1 and stats["learn"]["latency_ms"]["p50"] is not None


def test_create_download_bulk_delete_conform(
    online_host: Host, conformance: Conformance, online_spec: dict[str, Any]
) -> None:
    h = online_host
    created = h.post(BASE, json={"plugin": "trump-approval", "name": "doc-copy"})
    assert created.status_code == 201, created.text
    body = conformance.check(created, BASE, "post")
    assert created.headers["Location"] == body["links"]["self"]
    again = h.post(BASE, json={"plugin": "trump-approval", "name": "doc-copy"})
    assert conformance.check(again, BASE, "post")["code"] == 409
    for bad in ({"plugin": "nope"}, {}, {"plugin": "phishing", "name": "-bad"}):
        assert conformance.check(h.post(BASE, json=bad), BASE, "post")["code"] == 422

    lines = [
        {"features": TRUMP_FEATURES, "ground_truth": 40.0},
        {"features": TRUMP_FEATURES},
        {"features": TRUMP_FEATURES, "ground_truth": 41.0, "id": "bulk-1"},
    ]
    data = "\n".join(json.dumps(line) for line in lines) + "\nnot json\n"
    r = h.post("/v2/online/doc-copy/bulk/", data=data.encode())
    assert r.status_code == 200, r.text
    media = r.headers["Content-Type"].split(";")[0]
    documented = online_spec["paths"][f"{MODEL}/bulk/"]["post"]["responses"]["200"]["content"]
    assert media in documented
    where = pointer("paths", f"{MODEL}/bulk/", "post", "responses", "200", "content", media)
    line_schema = {"$ref": f"{URI}#/{where}/x-item-schema"}
    item = {"$ref": f"{URI}#/components/schemas/OnlineUpdate"}
    error = {"$ref": f"{URI}#/components/schemas/OnlineBulkError"}
    out = [json.loads(line) for line in r.text.splitlines()]
    assert len(out) == 4
    for line, schema in zip(out, [item, error, item, error], strict=True):
        conformance.validate(line, schema)
        conformance.validate(line, line_schema)
    assert out[1]["error"]["details"]["line"] == 2
    predicted = h.post(
        "/v2/online/doc-copy/bulk/", params={"op": "predict"}, data=json.dumps(lines[1])
    )
    prediction = {"$ref": f"{URI}#/components/schemas/OnlinePrediction"}
    conformance.validate(json.loads(predicted.text), prediction)

    download = h.get("/v2/online/doc-copy/download")
    assert download.status_code == 200
    conformance.check(download, f"{MODEL}/download")
    assert download.headers["X-Checksum-SHA256"]

    deleted = h.delete("/v2/online/doc-copy")
    assert conformance.check(deleted, MODEL, "delete") == {"deleted": "doc-copy"}
    assert conformance.check(h.delete("/v2/online/doc-copy"), MODEL, "delete")["code"] == 404


def read_event(response: requests.Response, wanted: str) -> dict[str, Any]:
    """The first server-sent event named ``wanted``, as the fields of the event."""
    event: dict[str, Any] = {}
    for raw in response.iter_lines(decode_unicode=True):
        if raw == "":
            if event.get("event") == wanted:
                return event
            event = {}
        elif not raw.startswith(":"):
            key, _, value = raw.partition(": ")
            event[key] = value
    raise AssertionError(f"the stream ended before a {wanted!r} event")


def test_streams_conform(online_host: Host, conformance: Conformance) -> None:
    h = online_host
    with h.get(
        "/v2/online/phishing/stream/metrics", params={"interval": 0.2}, stream=True, timeout=10
    ) as r:
        media = r.headers["Content-Type"].split(";")[0]
        schema = conformance.schema_of(f"{MODEL}/stream/metrics", "get", 200, media)
        event = read_event(r, "metrics")
    conformance.validate(event, schema)
    metrics = {"$ref": f"{URI}#/components/schemas/OnlineMetrics"}
    conformance.validate(json.loads(event["data"]), metrics)

    with h.get("/v2/online/phishing/stream/events", stream=True, timeout=10) as r:
        media = r.headers["Content-Type"].split(";")[0]
        schema = conformance.schema_of(f"{MODEL}/stream/events", "get", 200, media)
        post(h, "predict", "phishing", {"features": {"https": 1.0}, "id": "streamed"})
        event = read_event(r, "predict")
    conformance.validate(event, schema)
    assert json.loads(event["data"])["id"] == "streamed"
