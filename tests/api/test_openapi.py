"""The OpenAPI document, the Swagger UI and the flags that change them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from html.parser import HTMLParser
from typing import Any

import pytest
import requests
from conftest import EXAMPLE_MODELS, Host, launch
from deepaas_host_demo.model import DemoModel
from deepaas_host_sklearn_iris.model import IrisModel
from marshmallow import fields, missing, validate
from openapi_spec_validator import validate as validate_spec

from deepaas_host.model.arguments import FLOAT_LIMIT, INT_MAX, INT_MIN
from deepaas_host.model.discovery import quiet_legacy_warnings

from .conftest import assert_error, predictions

with quiet_legacy_warnings():
    from deepaas_legacy_plugin import api as legacy_api
    from deepaas_legacy_plugin.klass import LegacyModel

TRAINABLE = {"demo", "iris", "legacy"}
#: Models with load(): only they have load/unload routes and ``?version=``.
LOADABLE = {"demo", "iris"}


def predict_args(name: str) -> dict[str, fields.Field]:
    """The plugin's own argument definitions, read in this process."""
    with quiet_legacy_warnings():
        if name == "demo":
            return dict(DemoModel().get_predict_args())
        if name == "iris":
            return dict(IrisModel().get_predict_args())
        if name == "legacy":
            return dict(legacy_api.get_predict_args())
        return dict(LegacyModel(name).get_predict_args())


def expected_property(f: fields.Field) -> dict[str, Any]:
    if f.metadata.get("type") == "file":
        return {"type": "string", "format": "binary"}
    kinds = [
        (fields.Bool, "boolean"),
        (fields.Int, "integer"),
        (fields.Number, "number"),
        (fields.List, "array"),
        (fields.Str, "string"),
    ]
    expected: dict[str, Any] = {"type": next(t for cls, t in kinds if isinstance(f, cls))}
    choices = f.metadata.get("enum")
    # what the host adds: integers are 64-bit, other numbers finite doubles (a float
    # field is a JSON number already, so only Decimal and Number state the bounds)
    if isinstance(f, fields.Int):
        expected |= {"minimum": INT_MIN, "maximum": INT_MAX}
    elif isinstance(f, fields.Number) and not isinstance(f, fields.Float):
        expected |= {"minimum": -FLOAT_LIMIT, "maximum": FLOAT_LIMIT}
    for v in f.validators:
        if isinstance(v, validate.OneOf):
            choices = v.choices
        if isinstance(v, validate.Range):
            if v.min is not None:
                expected["minimum"] = max(v.min, expected.get("minimum", v.min))
            if v.max is not None:
                expected["maximum"] = min(v.max, expected.get("maximum", v.max))
    if isinstance(f, fields.Str) and f.required:
        # an empty value in a form counts as not given
        expected["minLength"] = 1
    if choices is not None:
        expected["enum"] = list(choices)
    if f.load_default is not missing and f.load_default is not None:
        expected["default"] = f.load_default
    return expected


def operation(spec: Mapping[str, Any], path: str, method: str) -> dict[str, Any]:
    op: dict[str, Any] = spec["paths"][path][method]
    return op


class AssetLinks(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script" and values.get("src"):
            self.links.append(str(values["src"]))
        if tag == "link" and values.get("rel") == "stylesheet" and values.get("href"):
            self.links.append(str(values["href"]))


def assets_of(page: str) -> list[str]:
    parser = AssetLinks()
    parser.feed(page)
    return parser.links


# -- the document --------------------------------------------------------------------


def test_spec_is_valid_openapi_3_under_both_names(host: Host, spec: dict[str, Any]) -> None:
    validate_spec(spec)
    assert spec["openapi"].startswith("3.")
    swagger = host.get("/swagger.json")
    assert swagger.status_code == 200
    assert swagger.json() == spec


def test_spec_has_exactly_the_served_routes(spec: dict[str, Any]) -> None:
    expected = {"/", "/v2/", "/v2/health", "/v2/models/"}
    for name in EXAMPLE_MODELS:
        expected |= {f"/v2/models/{name}/", f"/v2/models/{name}/predict/"}
        if name in TRAINABLE:
            expected |= {f"/v2/models/{name}/train/", f"/v2/models/{name}/train/{{job_id}}"}
        versions = f"/v2/models/{name}/versions/"
        expected |= {versions, versions + "{version}", versions + "{version}/download"}
        expected |= {versions + "{version}/" + a for a in ("default", "pin", "unpin")}
        if name in LOADABLE:
            expected |= {versions + "{version}/" + a for a in ("load", "unload")}
    # word-counts learns through its own learn(); it is a served model too.
    expected |= {"/v2/models/word-counts/", "/v2/models/word-counts/predict/"}
    expected |= {"/v2/models/word-counts/learn/"}
    versions = "/v2/models/word-counts/versions/"
    expected |= {versions, versions + "{version}", versions + "{version}/download"}
    expected |= {versions + "{version}/" + a for a in ("default", "pin", "unpin")}
    online = "/v2/online/{name}"
    expected |= {"/v2/online/", online, online + "/download", online + "/metrics"}
    expected |= {online + "/repair"}
    expected |= {online + "/stats", online + "/stream/metrics", online + "/stream/events"}
    expected |= {f"{online}/{action}/" for action in ("predict", "learn", "label", "bulk")}
    assert set(spec["paths"]) == expected
    for name in EXAMPLE_MODELS:
        assert set(spec["paths"][f"/v2/models/{name}/predict/"]) == {"post"}


@pytest.mark.parametrize("name", EXAMPLE_MODELS)
def test_predict_parameters_match_the_plugin(spec: dict[str, Any], name: str) -> None:
    args = predict_args(name)
    body = operation(spec, f"/v2/models/{name}/predict/", "post")["requestBody"]
    schema = body["content"]["multipart/form-data"]["schema"]
    assert set(schema["properties"]) == set(args)
    for arg, f in args.items():
        documented = schema["properties"][arg]
        expected = expected_property(f)
        for key, value in expected.items():
            assert documented[key] == value, (name, arg, key)
        if "default" not in expected:
            assert "default" not in documented, (name, arg)
        if "enum" not in expected:
            assert "enum" not in documented, (name, arg)
    # unknown arguments are refused, and the spec says so
    for media in body["content"].values():
        assert media["schema"]["additionalProperties"] is False
    required = {arg for arg, f in args.items() if f.required}
    assert set(schema.get("required", [])) == required
    assert body["required"] is bool(required)
    if any(f.metadata.get("type") == "file" for f in args.values()):
        # a file can only travel in multipart/form-data
        assert set(body["content"]) == {"multipart/form-data"}


def test_list_argument_documents_its_items(spec: dict[str, Any]) -> None:
    schema = operation(spec, "/v2/models/demo/predict/", "post")["requestBody"]
    tags = schema["content"]["multipart/form-data"]["schema"]["properties"]["tags"]
    assert tags["type"] == "array"
    assert tags["items"]["type"] == "string"


def test_required_arguments_are_documented(small_host: Host) -> None:
    document = small_host.get("/v2/openapi.json").json()
    validate_spec(document)
    body = operation(document, "/v2/models/strict/predict/", "post")["requestBody"]
    assert body["required"] is True
    schema = body["content"]["multipart/form-data"]["schema"]
    assert set(schema["required"]) == {"text", "number", "choice", "image"}
    assert schema["properties"]["image"] == {
        "type": "string",
        "format": "binary",
        "description": "Any file",
    }
    assert schema["properties"]["choice"]["enum"] == ["a", "b"]
    assert schema["properties"]["number"] == {
        "type": "integer",
        "minimum": 0,
        "maximum": 10,
    }


def test_predict_responses_list_every_media_type(spec: dict[str, Any]) -> None:
    responses = operation(spec, "/v2/models/demo/predict/", "post")["responses"]
    content = responses["200"]["content"]
    assert set(content) == {"application/json", "application/zip", "image/png"}
    for media in ("application/zip", "image/png"):
        assert content[media]["schema"] == {"type": "string", "format": "binary"}
    assert {"400", "406", "413", "415", "422", "500", "502"} <= set(responses)
    iris = operation(spec, "/v2/models/iris/predict/", "post")["responses"]["200"]["content"]
    assert set(iris) == {"application/json"}


@pytest.mark.parametrize("name", ["legacy_class", "legacy_instance"])
def test_no_train_paths_for_models_without_train(spec: dict[str, Any], name: str) -> None:
    assert not [p for p in spec["paths"] if p.startswith(f"/v2/models/{name}/train")]


@pytest.mark.parametrize("name", sorted(TRAINABLE))
def test_train_paths_for_models_with_train(spec: dict[str, Any], name: str) -> None:
    assert set(spec["paths"][f"/v2/models/{name}/train/"]) == {"get", "post"}
    assert set(spec["paths"][f"/v2/models/{name}/train/{{job_id}}"]) == {"get", "delete"}


# -- Swagger UI ----------------------------------------------------------------------------


def test_swagger_ui_is_served_with_local_assets(host: Host) -> None:
    page = host.get("/api")
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert "/v2/openapi.json" in page.text
    links = assets_of(page.text)
    assert any(link.endswith(".js") for link in links)
    assert any(link.endswith(".css") for link in links)
    for link in links:
        assert link.startswith("/"), f"{link} is not served by the host"
        asset = host.get(link)
        assert asset.status_code == 200, link
        assert len(asset.content) > 1000, link
        kind = "javascript" if link.endswith(".js") else "css"
        assert kind in asset.headers["Content-Type"], (link, asset.headers["Content-Type"])
    assert host.get("/api/").text == page.text


def test_ui_redirects_to_api(host: Host) -> None:
    for path in ("/ui", "/ui/"):
        r = host.get(path, allow_redirects=False)
        assert r.status_code in (301, 302, 307, 308)
        assert r.headers["Location"] == "/api"
    followed = host.get("/ui")
    assert followed.status_code == 200
    assert followed.url == host.url + "/api"


# -- flags ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prefixed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    """``--base-path /prefix --no-train`` serving a trainable and an untrainable model."""
    h = launch(
        tmp_path_factory.mktemp("prefixed"),
        ["--base-path", "/prefix", "--no-train", "--model", "demo", "--model", "legacy_class"],
        base_path="/prefix",
    )
    yield h
    h.stop()


@pytest.fixture(scope="module")
def no_docs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    h = launch(tmp_path_factory.mktemp("nodocs"), ["--no-docs", "--model", "legacy_class"])
    yield h
    h.stop()


def test_no_train_means_no_train_anywhere(prefixed: Host) -> None:
    document = prefixed.get("/v2/openapi.json").json()
    validate_spec(document)
    assert not [p for p in document["paths"] if "/train" in p]
    for model in prefixed.get("/v2/models/").json()["models"]:
        assert "train" not in {link["rel"] for link in model["links"]}
    for method in ("post", "get"):
        r = getattr(prefixed, method)("/v2/models/demo/train/")
        assert_error(r, 404)


def test_base_path_moves_every_route(prefixed: Host) -> None:
    root = f"http://127.0.0.1:{prefixed.port}"
    document = prefixed.get("/v2/openapi.json").json()
    assert document["paths"]
    assert all(p.startswith("/prefix/") for p in document["paths"]), list(document["paths"])
    assert "/prefix/" in document["paths"]
    # every documented GET without parameters answers under the prefix
    for path, ops in document["paths"].items():
        if "get" in ops and "{" not in path:
            assert requests.get(root + path, timeout=30).status_code == 200, path
    assert predictions(prefixed.post("/v2/models/demo/predict/", params={"count": 2}))["count"] == 2
    assert prefixed.get("/swagger.json").json() == document
    # links carry the prefix
    v2 = prefixed.get("/v2/").json()
    assert all(link["href"].startswith(root + "/prefix/") for link in v2["links"])
    models = prefixed.get("/v2/models/").json()["models"]
    for model in models:
        for link in model["links"]:
            assert link["href"].startswith(root + "/prefix/v2/models/")
    # nothing is left at the old place
    for path in (
        "/",
        "/v2/",
        "/v2/models/",
        "/v2/health",
        "/v2/openapi.json",
        "/swagger.json",
        "/api",
        "/ui",
    ):
        r = requests.get(root + path, timeout=30)
        assert_error(r, 404)
    assert_error(requests.post(root + "/v2/models/demo/predict/", timeout=30), 404)
    assert_error(prefixed.get("/v2/models/nope/"), 404, "ModelNotFound")


def test_base_path_moves_the_ui(prefixed: Host) -> None:
    page = prefixed.get("/api")
    assert page.status_code == 200
    assert "/prefix/v2/openapi.json" in page.text
    links = assets_of(page.text)
    assert links
    for link in links:
        assert link.startswith("/prefix/api/"), link
        r = requests.get(f"http://127.0.0.1:{prefixed.port}{link}", timeout=30)
        assert r.status_code == 200 and r.content, link
    r = prefixed.get("/ui", allow_redirects=False)
    assert r.headers["Location"] == "/prefix/api"


def test_no_docs_removes_spec_and_ui(no_docs: Host) -> None:
    for path in (
        "/v2/openapi.json",
        "/swagger.json",
        "/api",
        "/api/",
        "/ui",
        "/api/static/swagger-ui.css",
    ):
        assert_error(no_docs.get(path), 404)
    rels = {link["rel"] for link in no_docs.get("/v2/").json()["links"]}
    assert "describedby" not in rels and "help" not in rels
    # the API itself is unaffected
    r = no_docs.post("/v2/models/legacy_class/predict/")
    assert r.status_code == 200 and r.json()["status"] == "OK"
