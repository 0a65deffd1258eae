"""Real responses held against the OpenAPI document the same server publishes.

Every response below is validated against the schema documented for its path,
method, status code and media type, with ``$ref``s resolved inside the served
document and OpenAPI 3.0 semantics (``nullable``).
"""

from __future__ import annotations

import io
import os
import time
from typing import Any

import jsonschema
import pytest
import requests
from conftest import EXAMPLE_MODELS, Host
from openapi_schema_validator import OAS30Validator
from openapi_schema_validator import validate as validate_instance
from PIL import Image
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

URI = "urn:deepaas-host:openapi"


def pointer(*parts: str) -> str:
    return "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


class Conformance:
    """Validates responses against one served OpenAPI document."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        resource = Resource.from_contents(spec, default_specification=DRAFT4)
        self.registry: Registry[Any] = Registry().with_resource(URI, resource)
        self.checked: set[tuple[str, str, str, str]] = set()

    def schema_of(self, path: str, method: str, status: int, media: str) -> dict[str, Any]:
        responses = self.spec["paths"][path][method]["responses"]
        assert str(status) in responses, f"{method.upper()} {path} {status} is not documented"
        content = responses[str(status)]["content"]
        assert media in content, f"{method.upper()} {path} {status}: {media} is not documented"
        where = pointer("paths", path, method, "responses", str(status), "content", media)
        return {"$ref": f"{URI}#/{where}/schema"}

    def validate(self, instance: Any, schema: dict[str, Any]) -> None:
        validate_instance(instance, schema, cls=OAS30Validator, registry=self.registry)

    def check(self, response: requests.Response, path: str, method: str = "get") -> Any:
        media = response.headers["Content-Type"].split(";")[0].strip()
        schema = self.schema_of(path, method, response.status_code, media)
        self.checked.add((path, method, str(response.status_code), media))
        if media == "application/json":
            body = response.json()
            self.validate(body, schema)
            return body
        documented = self.spec["paths"][path][method]["responses"][str(response.status_code)]
        assert documented["content"][media]["schema"] == {"type": "string", "format": "binary"}
        assert response.content
        return response.content


@pytest.fixture(scope="module")
def conformance(spec: dict[str, Any]) -> Conformance:
    return Conformance(spec)


def test_the_checker_rejects_what_the_spec_forbids(conformance: Conformance) -> None:
    """Guard against a checker that accepts anything."""
    predict = conformance.schema_of("/v2/models/demo/predict/", "post", 200, "application/json")
    iris = conformance.schema_of("/v2/models/iris/predict/", "post", 200, "application/json")
    error = conformance.schema_of("/v2/models/demo/predict/", "post", 422, "application/json")
    job = conformance.schema_of("/v2/models/demo/train/", "post", 202, "application/json")
    bad = [
        (predict, {"status": "OK"}),
        (predict, {"status": "fine", "predictions": 1}),
        (iris, {"status": "OK", "predictions": [{"label": "x"}]}),
        (iris, {"status": "OK", "predictions": [], "extra": 1}),
        (error, {"status": "error", "code": "422", "error": "E", "message": "m"}),
        (
            job,
            {
                "id": "1",
                "uuid": "1",
                "model": "demo",
                "status": "sleeping",
                "arguments": {},
                "created": "x",
                "href": "h",
            },
        ),
    ]
    for schema, instance in bad:
        with pytest.raises(jsonschema.ValidationError):
            conformance.validate(instance, schema)
    # nullable is understood (OpenAPI 3.0), so a fresh job validates
    conformance.validate(
        {
            "id": "1",
            "uuid": "1",
            "model": "demo",
            "status": "queued",
            "arguments": {},
            "created": "2024-01-01T00:00:00Z",
            "started": None,
            "finished": None,
            "duration": None,
            "progress": None,
            "result": None,
            "error": None,
            "href": "h",
        },
        job,
    )


def test_meta_routes(host: Host, conformance: Conformance) -> None:
    for path in ("/", "/v2/", "/v2/models/", "/v2/health"):
        r = host.get(path)
        assert r.status_code == 200
        conformance.check(r, path)
    for name in EXAMPLE_MODELS:
        path = f"/v2/models/{name}/"
        conformance.check(host.get(path), path)


@pytest.mark.parametrize("name", EXAMPLE_MODELS)
def test_predict_json(host: Host, conformance: Conformance, name: str) -> None:
    path = f"/v2/models/{name}/predict/"
    args = {"iris": {"sepal_length": 6, "sepal_width": 3, "petal_length": 5, "petal_width": 2}}
    r = host.post(path, params=args.get(name, {}))
    assert r.status_code == 200, r.text
    conformance.check(r, path, "post")


@pytest.mark.parametrize(
    ("name", "media"),
    [
        ("demo", "image/png"),
        ("demo", "application/zip"),
        ("legacy", "image/png"),
        ("legacy", "application/zip"),
        ("legacy_class", "image/png"),
    ],
)
def test_predict_binary(host: Host, conformance: Conformance, name: str, media: str) -> None:
    path = f"/v2/models/{name}/predict/"
    r = host.post(path, headers={"Accept": media})
    assert r.status_code == 200
    content = conformance.check(r, path, "post")
    if media == "image/png":
        with Image.open(io.BytesIO(content)) as image:
            image.verify()


def test_predict_errors(host: Host, conformance: Conformance) -> None:
    path = "/v2/models/demo/predict/"
    cases = [
        (400, host.post(path, data=b"{", headers={"Content-Type": "application/json"})),
        (406, host.post(path, headers={"Accept": "text/html"})),
        (415, host.post(path, data=b"x", headers={"Content-Type": "text/plain"})),
        (422, host.post(path, params={"count": "zero", "nope": "1"})),
        (500, host.post(path, params={"fail": "raise"})),
    ]
    for status, response in cases:
        assert response.status_code == status, response.text
        body = conformance.check(response, path, "post")
        assert body["code"] == status
    iris = "/v2/models/iris/predict/"
    conformance.check(host.post(iris, params={"sepal_width": 1}), iris, "post")


def test_predict_413_and_502(small_host: Host) -> None:
    conformance = Conformance(small_host.get("/v2/openapi.json").json())
    path = "/v2/models/demo/predict/"
    r = small_host.post(path, files={"data": ("x", os.urandom(4096))})
    assert r.status_code == 413
    conformance.check(r, path, "post")
    r = small_host.post(path, params={"fail": "exit"})
    assert r.status_code == 502
    conformance.check(r, path, "post")
    r = small_host.post("/v2/models/strict/predict/")
    assert r.status_code == 422
    conformance.check(r, "/v2/models/strict/predict/", "post")


def wait_for_job(host: Host, href: str, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, Any] = requests.get(href, timeout=30).json()
        if job["status"] in ("done", "error", "cancelled"):
            return job
        time.sleep(0.1)
    raise TimeoutError(f"job {href} did not finish in {timeout}s")


def test_train_routes(host: Host, conformance: Conformance) -> None:
    base = "/v2/models/demo/train/"
    item = "/v2/models/demo/train/{job_id}"
    r = host.post(base, data={"duration": "0.2", "epochs": "2"})
    assert r.status_code == 202, r.text
    job = conformance.check(r, base, "post")
    assert job["status"] in ("queued", "running")
    assert job["id"] == job["uuid"]
    assert job["arguments"]["epochs"] == 2
    assert r.headers["Location"] == job["href"]
    assert job["href"] == f"{host.url}/v2/models/demo/train/{job['id']}"

    listing = host.get(base)
    jobs = conformance.check(listing, base, "get")
    assert job["id"] in [j["id"] for j in jobs]

    finished = wait_for_job(host, job["href"])
    assert finished["status"] == "done", finished
    got = host.get(f"{base}{job['id']}")
    body = conformance.check(got, item, "get")
    assert body["result"]["epochs"] == 2
    assert body["progress"] == 1.0
    assert body["started"] is not None and body["finished"] is not None

    # cancelling a finished job changes nothing and still answers a Job
    cancelled = host.delete(f"{base}{job['id']}")
    assert conformance.check(cancelled, item, "delete")["status"] == "done"

    # a long job cancelled while running or queued
    r = host.post(base, json={"duration": 30, "epochs": 30})
    assert r.status_code == 202
    long_job = r.json()
    cancelled = host.delete(f"{base}{long_job['id']}")
    body = conformance.check(cancelled, item, "delete")
    assert body["status"] == "cancelled"
    assert (
        conformance.check(host.get(f"{base}{long_job['id']}"), item, "get")["status"] == "cancelled"
    )

    # errors
    for response, path, method in [
        (host.get(f"{base}no-such-job"), item, "get"),
        (host.delete(f"{base}no-such-job"), item, "delete"),
        (host.post(base, params={"epochs": 0}), base, "post"),
        (host.post(base, data=b"[]", headers={"Content-Type": "application/json"}), base, "post"),
        (host.post(base, data=b"x", headers={"Content-Type": "text/csv"}), base, "post"),
    ]:
        assert response.status_code in (400, 404, 415, 422), response.text
        conformance.check(response, path, method)


def test_iris_and_legacy_train_are_accepted(host: Host, conformance: Conformance) -> None:
    results = {}
    for name, args in (("iris", {"n_estimators": 5}), ("legacy", {"epochs": 3, "sleep": 0})):
        base = f"/v2/models/{name}/train/"
        r = host.post(base, json=args)
        assert r.status_code == 202, r.text
        job = conformance.check(r, base, "post")
        finished = wait_for_job(host, job["href"])
        assert finished["status"] == "done", finished
        got = requests.get(finished["href"], timeout=30)
        results[name] = conformance.check(got, f"/v2/models/{name}/train/{{job_id}}")["result"]
    assert results["iris"]["params"]["n_estimators"] == 5
    assert results["iris"]["n_train"] + results["iris"]["n_test"] == 150
    assert results["iris"]["accuracy"] > 0.8
    assert results["legacy"]["losses"] == pytest.approx([1 / 2, 1 / 3, 1 / 4])


def test_refusals_nulls_and_any_json_match_the_document(input_host: Host) -> None:
    """Responses that carry null, any JSON, or a model's refusal, against the document."""
    conformance = Conformance(input_host.get("/v2/openapi.json").json())
    health = conformance.check(input_host.get("/v2/health"), "/v2/health")
    assert health["error"] is None

    # metadata: null for an absent url, a number given for the version sent as text,
    # structures kept, what is not JSON as its text
    listing = conformance.check(input_host.get("/v2/models/"), "/v2/models/")
    meta = conformance.check(input_host.get("/v2/models/refuser/"), "/v2/models/refuser/")
    assert meta in listing["models"]
    assert meta["url"] is None and meta["license"] is None
    assert meta["version"] == "3"
    assert meta["tags"] == {"kind": "test", "levels": [1, 2]}
    assert meta["author"] == ["one", "two"]
    assert isinstance(meta["created"], str)

    predict = "/v2/models/refuser/predict/"
    for mode, status in (
        ("ok", 200),
        ("invalid", 422),
        ("invalid-whole", 422),
        ("validation", 422),
        ("overflow", 422),
        ("value-error", 500),
    ):
        response = input_host.post(predict, json={"mode": mode, "scale": 2})
        assert response.status_code == status, response.text
        conformance.check(response, predict, "post")

    learn = "/v2/models/refuser/learn/"
    answer = conformance.check(input_host.post(learn, json={}), learn, "post")
    assert answer[1] is None  # learn() may answer any JSON, null inside included
    conformance.check(input_host.post(learn, json={"mode": "invalid"}), learn, "post")

    numbers = "/v2/models/numbers/predict/"
    for body in ({"name": "n", "code": "c", "count": 1.5}, {"name": "", "code": "c"}):
        response = input_host.post(numbers, json=body)
        assert response.status_code == 422
        conformance.check(response, numbers, "post")
    conformance.check(input_host.post(numbers, json={"name": "n", "code": ""}), numbers, "post")

    # a training job the model refused: error set, result and progress null
    train = "/v2/models/refuser/train/"
    job = conformance.check(input_host.post(train, json={"mode": "invalid"}), train, "post")
    assert job["started"] is None or isinstance(job["started"], str)
    finished = wait_for_job(input_host, job["href"])
    assert finished["status"] == "error"
    got = conformance.check(requests.get(job["href"], timeout=30), f"{train}{{job_id}}")
    assert got["result"] is None and got["progress"] is None
    assert got["error"].startswith("Model 'refuser' refused the input")
    conformance.check(input_host.get(train), train)

    # the document says where the model's refusal comes from
    documented = conformance.spec["paths"][predict]["post"]["responses"]["422"]
    assert "InvalidInput" in documented["description"]
