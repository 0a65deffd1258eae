"""A web page the user merely visits tries to run its code on the user's machine.

The attack: the page has the user's browser ``POST`` a pickle to the host on
127.0.0.1 — ``fetch(url, {mode: "no-cors", body: formData})`` or a script-submitted
``<form enctype="multipart/form-data">``. Neither needs a CORS preflight, and the TCP
peer is the user's own browser, so "loopback only" does not stop it. The pickle
creates a marker file when unpickled; both routes that would unpickle it are
attacked (``POST /v2/online/`` with file and flavor, and ``POST
/v2/models/iris/versions/``, which test-loads with joblib).

Expected: 403 ``CrossSiteRequest``, the marker never appears, the host keeps serving.
The same bytes from curl (a program on this machine, the README way) are taken —
proof that the refused requests carried a working exploit — and the Swagger UI the
host serves (same origin) keeps working.
"""

from __future__ import annotations

import io
import json
import pickle
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import joblib
import pytest
import requests
from river import linear_model
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier

from .conftest import chromium_headers, error, marker_pickle, webkit_multipart

if TYPE_CHECKING:
    from conftest import Host

EVIL = "http://evil.example"
SETOSA = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


def _forest() -> bytes:
    iris = load_iris()
    forest = RandomForestClassifier(n_estimators=3, random_state=0).fit(iris.data, iris.target)
    out = io.BytesIO()
    joblib.dump(forest, out)
    return out.getvalue()


def _targets(payload: bytes) -> list[tuple[str, dict[str, str], dict[str, tuple[str, bytes]]]]:
    return [
        ("/v2/online/", {"flavor": "regression"}, {"file": ("model.pkl", payload)}),
        ("/v2/models/iris/versions/", {"engine": "joblib"}, {"file": ("model.joblib", payload)}),
    ]


def _still_serving(host: Host) -> None:
    assert host.get("/v2/health").status_code == 200
    answer = host.post("/v2/models/iris/predict/", params=SETOSA)
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("mode", ["no-cors", "navigate"])
@pytest.mark.parametrize("site", ["cross-site", "same-site"])
def test_a_page_of_another_site_cannot_post_a_pickle(
    loopback_host: Host, tmp_path: Path, mode: str, site: str
) -> None:
    # same-site: another port of localhost is another origin, yet the same "site".
    origin = EVIL if site == "cross-site" else "http://localhost:8000"
    marker = tmp_path / "pwned"
    versions = loopback_host.get("/v2/models/iris/versions/").json()["versions"]
    for path, fields, files in _targets(marker_pickle(marker)):
        content_type, body = webkit_multipart(fields, files)
        headers = chromium_headers(content_type, origin=origin, site=site, mode=mode)
        refused = requests.post(loopback_host.url + path, data=body, headers=headers, timeout=30)
        answer = error(refused, 403, "CrossSiteRequest")
        assert f"Sec-Fetch-Site: {site}" in answer["message"]
    _still_serving(loopback_host)
    assert not marker.exists()
    assert loopback_host.get("/v2/models/iris/versions/").json()["versions"] == versions


@pytest.mark.parametrize(
    "origin",
    [EVIL, "null", "http://127.0.0.1:1", "https://127.0.0.1"],
    ids=["other-site", "null", "other-port", "other-scheme"],
)
def test_an_older_browser_without_sec_fetch_is_judged_by_its_origin(
    loopback_host: Host, tmp_path: Path, origin: str
) -> None:
    # Safari before 16.4 sends Origin but no Sec-Fetch-*; "null" comes from sandboxed
    # frames and file:// pages.
    marker = tmp_path / "pwned"
    for path, fields, files in _targets(marker_pickle(marker)):
        content_type, body = webkit_multipart(fields, files)
        headers = {"Origin": origin, "Content-Type": content_type}
        refused = requests.post(loopback_host.url + path, data=body, headers=headers, timeout=30)
        error(refused, 403, "CrossSiteRequest")
    assert not marker.exists()
    _still_serving(loopback_host)


def test_every_unsafe_method_is_guarded_not_only_uploads(loopback_host: Host) -> None:
    content_type, body = webkit_multipart({"plugin": "running-mean"}, {})
    headers = chromium_headers(content_type, origin=EVIL, site="cross-site", mode="no-cors")
    url = loopback_host.url
    for method, path in [
        ("POST", "/v2/models/iris/predict/"),
        ("POST", "/v2/online/"),
        ("DELETE", "/v2/online/anything"),
        ("PUT", "/v2/models/"),
    ]:
        refused = requests.request(method, url + path, data=body, headers=headers, timeout=30)
        error(refused, 403, "CrossSiteRequest")
    # Reading is not guarded (a page cannot read the answer without CORS anyway).
    read = requests.get(url + "/v2/models/", headers={"Origin": EVIL}, timeout=30)
    assert read.status_code == 200


def test_the_same_bytes_from_curl_are_loaded(loopback_host: Host, tmp_path: Path) -> None:
    """The README way: a program on this machine, no browser headers."""
    marker = tmp_path / "ran"
    exploit = tmp_path / "model.pkl"
    exploit.write_bytes(marker_pickle(marker))
    url = loopback_host.url
    taken = subprocess.run(
        ["curl", "-sS", "-F", f"file=@{exploit}", "-F", "flavor=regression", f"{url}/v2/online/"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    # Unpickled — it is no river model, hence 422 — so the refusals above were the guard's.
    assert json.loads(taken.stdout)["code"] == 422, taken.stdout
    assert marker.exists()

    river = tmp_path / "river.pkl"
    river.write_bytes(pickle.dumps(linear_model.LinearRegression()))
    forest = tmp_path / "forest.joblib"
    forest.write_bytes(_forest())
    for args in (
        ["-F", f"file=@{river}", "-F", "flavor=regression", f"{url}/v2/online/"],
        [
            "-F",
            f"file=@{forest}",
            "-F",
            "engine=joblib",
            "-F",
            "version=rf-curl",
            f"{url}/v2/models/iris/versions/",
        ],
    ):
        created = subprocess.run(
            ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert created.stdout == "201", (args, created.stdout, created.stderr)
    loaded = loopback_host.post("/v2/models/iris/versions/rf-curl/load")
    assert loaded.status_code == 200, loaded.text


@pytest.mark.parametrize("name", ["127.0.0.1", "localhost"])
def test_the_swagger_ui_of_the_host_keeps_working(
    loopback_host: Host, tmp_path: Path, name: str
) -> None:
    # What the UI's "Try it out" sends: fetch() from the page at <origin>/api.
    origin = f"http://{name}:{loopback_host.port}"
    url = origin + loopback_host.base_path
    content_type, body = webkit_multipart(
        {"flavor": "regression", "name": f"ui-{name.replace('.', '-')}"},
        {"file": ("river.pkl", pickle.dumps(linear_model.LinearRegression()))},
    )
    headers = chromium_headers(
        content_type, origin=origin, site="same-origin", mode="cors", referer=f"{url}/api"
    )
    created = requests.post(url + "/v2/online/", data=body, headers=headers, timeout=30)
    assert created.status_code == 201, created.text
    assert created.json()["links"]["self"].startswith(origin + "/")

    content_type, body = webkit_multipart(
        {"engine": "joblib", "version": f"ui-{name.replace('.', '-')}"},
        {"file": ("forest.joblib", _forest())},
    )
    headers = chromium_headers(
        content_type, origin=origin, site="same-origin", mode="cors", referer=f"{url}/api"
    )
    uploaded = requests.post(
        url + "/v2/models/iris/versions/", data=body, headers=headers, timeout=60
    )
    assert uploaded.status_code == 201, uploaded.text
    predict_headers = {k: v for k, v in headers.items() if k != "Content-Type"}
    answer = requests.post(
        url + "/v2/models/iris/predict/", params=SETOSA, headers=predict_headers, timeout=30
    )
    assert answer.status_code == 200, answer.text
    # An older browser: the same origin, no Sec-Fetch-*.
    older = requests.post(
        url + "/v2/models/iris/predict/", params=SETOSA, headers={"Origin": origin}, timeout=30
    )
    assert older.status_code == 200, older.text
