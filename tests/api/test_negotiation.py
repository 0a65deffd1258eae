"""Response media type: the ``accept`` argument, the HTTP Accept header, 406, downloads."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest
import requests
from conftest import Host
from deepaas_host_demo.render import COLOURS, HEIGHT, WIDTH
from deepaas_legacy_plugin import PNG_PATH, ZIP_PATH
from PIL import Image

from .conftest import assert_error, curl, predictions

DEMO = "/v2/models/demo/predict/"
LEGACY = "/v2/models/legacy/predict/"
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"


def media_type(response: requests.Response) -> str:
    return response.headers["Content-Type"].split(";")[0].strip()


def bars(png: bytes, label: str) -> int:
    """Count the bars of ``label``'s colour along a row just above the axis."""
    with Image.open(io.BytesIO(png)) as original:
        image = original.convert("RGB")
    y = image.height - 20
    colour = COLOURS[label]
    row = [image.getpixel((x, y)) == colour for x in range(image.width)]
    return sum(1 for x in range(1, len(row)) if row[x] and not row[x - 1]) + int(row[0])


def check_demo_png(response: requests.Response, label: str, count: int) -> None:
    assert response.status_code == 200, response.text
    assert media_type(response) == "image/png"
    assert response.headers["Content-Disposition"] == 'attachment; filename="prediction.png"'
    with Image.open(io.BytesIO(response.content)) as image:
        image.verify()
    with Image.open(io.BytesIO(response.content)) as image:
        assert image.format == "PNG"
        assert image.size == (WIDTH, HEIGHT)
    assert bars(response.content, label) == count


def check_demo_zip(response: requests.Response, label: str, count: int) -> None:
    assert response.status_code == 200, response.text
    assert media_type(response) == "application/zip"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment; filename=") and disposition.endswith('.zip"')
    with zipfile.ZipFile(io.BytesIO(response.content)) as zf:
        assert zf.testzip() is None
        assert sorted(zf.namelist()) == ["image.png", "result.json"]
        result = json.loads(zf.read("result.json"))
        png = zf.read("image.png")
    assert (result["label"], result["count"]) == (label, count)
    assert result["accept"] == "application/zip"
    assert result["values"] == pytest.approx([(i + 1) / count for i in range(count)])
    with Image.open(io.BytesIO(png)) as image:
        assert image.size == (WIDTH, HEIGHT)
    assert bars(png, label) == count


# -- demo ------------------------------------------------------------------------


def test_default_is_json(host: Host) -> None:
    r = host.post(DEMO)
    assert media_type(r) == "application/json"
    assert predictions(r)["accept"] == "application/json"
    assert "Content-Disposition" not in r.headers


@pytest.mark.parametrize("source", ["query", "form", "json"])
def test_accept_argument_png(host: Host, source: str) -> None:
    args = {"accept": "image/png", "label": "dog", "count": 3}
    if source == "query":
        r = host.post(DEMO, params=args)
    elif source == "form":
        r = host.post(DEMO, data=args)
    else:
        r = host.post(DEMO, json=args)
    check_demo_png(r, "dog", 3)


def test_accept_argument_zip(host: Host) -> None:
    check_demo_zip(
        host.post(DEMO, params={"accept": "application/zip", "label": "bird", "count": 4}),
        "bird",
        4,
    )


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("image/png", "image/png"),
        ("application/zip", "application/zip"),
        ("application/json", "application/json"),
        ("image/*", "image/png"),
        ("*/*", "application/json"),
        ("application/*", "application/json"),
        ("application/zip, image/png", "application/zip"),
        ("image/png;q=0.5, application/zip;q=0.8", "application/zip"),
        ("application/json;q=0.1, image/png", "image/png"),
        ("*/*;q=0.1, image/png;q=0.2", "image/png"),
        ("text/html, image/png;q=0.3", "image/png"),
        ("IMAGE/PNG", "image/png"),
        (BROWSER, "application/json"),
        ("", "application/json"),
    ],
)
def test_accept_header(host: Host, header: str, expected: str) -> None:
    r = host.post(DEMO, params={"label": "cat", "count": 2}, headers={"Accept": header})
    assert r.status_code == 200, r.text
    assert media_type(r) == expected
    if expected == "image/png":
        check_demo_png(r, "cat", 2)
    elif expected == "application/zip":
        check_demo_zip(r, "cat", 2)
    else:
        assert predictions(r)["accept"] == "application/json"


@pytest.mark.parametrize(
    "header", ["text/html", "text/*", "image/jpeg, text/plain", "image/png;q=0", "*/*;q=0"]
)
def test_unsatisfiable_accept_is_406(host: Host, header: str) -> None:
    body = assert_error(host.post(DEMO, headers={"Accept": header}), 406, "NotAcceptable")
    assert set(body["details"]["available"]) == {"application/json", "application/zip", "image/png"}


def test_accept_argument_stands_when_the_header_allows_it(host: Host) -> None:
    r = host.post(DEMO, params={"accept": "image/png"}, headers={"Accept": "image/*, */*;q=0.1"})
    check_demo_png(r, "cat", 1)
    r = host.post(DEMO, data={"accept": "application/zip"}, headers={"Accept": "*/*"})
    check_demo_zip(r, "cat", 1)
    # a header that allows none of the model's types does not override the argument
    r = host.post(DEMO, json={"accept": "application/zip"}, headers={"Accept": "text/html"})
    check_demo_zip(r, "cat", 1)


def test_header_that_excludes_the_argument_decides(host: Host) -> None:
    # What Swagger UI sends: the form's default `accept` plus the chosen media type.
    r = host.post(
        DEMO, files={"accept": (None, "application/json")}, headers={"Accept": "image/png"}
    )
    check_demo_png(r, "cat", 1)
    r = host.post(DEMO, params={"accept": "image/png"}, headers={"Accept": "application/json"})
    assert predictions(r)["accept"] == "application/json"


def test_invalid_accept_argument_is_422_not_406(host: Host) -> None:
    body = assert_error(host.post(DEMO, params={"accept": "text/html"}), 422, "ArgumentError")
    assert set(body["details"]) == {"accept"}


# -- legacy: the model returns open(path, "rb") --------------------------------------


@pytest.mark.parametrize(
    ("how", "path", "media", "filename"),
    [
        ({"params": {"accept": "image/png"}}, PNG_PATH, "image/png", "example.png"),
        ({"headers": {"Accept": "image/*"}}, PNG_PATH, "image/png", "example.png"),
        ({"params": {"accept": "application/zip"}}, ZIP_PATH, "application/zip", "example.zip"),
        ({"headers": {"Accept": "application/zip"}}, ZIP_PATH, "application/zip", "example.zip"),
    ],
)
def test_legacy_file_object_answers(
    host: Host, how: dict[str, dict[str, str]], path: str, media: str, filename: str
) -> None:
    r = host.post(LEGACY, **how)  # type: ignore[arg-type]
    assert r.status_code == 200, r.text
    assert media_type(r) == media
    assert r.headers["Content-Disposition"] == f'attachment; filename="{filename}"'
    assert r.content == Path(path).read_bytes()
    if media == "image/png":
        with Image.open(io.BytesIO(r.content)) as image:
            image.verify()
    else:
        with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
            assert zf.testzip() is None
            assert sorted(zf.namelist()) == ["example.png", "predictions.json"]


@pytest.mark.parametrize("header", [BROWSER, "*/*", "application/json, image/png"])
def test_legacy_json_by_default(host: Host, header: str) -> None:
    r = host.post(LEGACY, headers={"Accept": header})
    assert media_type(r) == "application/json"
    assert r.json()["status"] == "OK"


def test_legacy_unsatisfiable_is_406(host: Host) -> None:
    assert_error(host.post(LEGACY, headers={"Accept": "text/csv"}), 406, "NotAcceptable")


# -- with the curl binary --------------------------------------------------------------


def test_curl_upload_and_png_download(host: Host, tmp_path: Path) -> None:
    upload = tmp_path / "photo.jpg"
    upload.write_bytes(bytes(range(256)) * 40)
    out = curl(
        "-X",
        "POST",
        host.url + DEMO,
        "-F",
        "label=bird",
        "-F",
        f"data=@{upload}",
        "-F",
        "tags=one",
        "-F",
        "tags=two",
    )
    body = json.loads(out.stdout)
    assert body["status"] == "OK"
    data = body["predictions"]["data"]
    assert data["original_filename"] == "photo.jpg"
    assert data["content_type"] == "image/jpeg"  # curl guesses it from the name
    assert data["size"] == upload.stat().st_size
    assert data["sha256"] == hashlib.sha256(upload.read_bytes()).hexdigest()
    assert body["predictions"]["tags"] == ["one", "two"]

    # -OJ saves under the name given by Content-Disposition
    downloads = tmp_path / "dl"
    downloads.mkdir()
    curl(
        "-X",
        "POST",
        host.url + DEMO + "?label=dog&count=5",
        "-H",
        "Accept: image/png",
        "-OJ",
        "--output-dir",
        str(downloads),
    )
    png = downloads / "prediction.png"
    assert [p.name for p in downloads.iterdir()] == ["prediction.png"]
    with Image.open(png) as image:
        assert image.size == (WIDTH, HEIGHT)
    assert bars(png.read_bytes(), "dog") == 5


def test_curl_zip_download(host: Host, tmp_path: Path) -> None:
    target = tmp_path / "out.zip"
    out = curl(
        "-X",
        "POST",
        host.url + DEMO,
        "-F",
        "accept=application/zip",
        "-F",
        "count=2",
        "-o",
        str(target),
        "-w",
        "%{content_type} %{http_code}",
    )
    assert out.stdout.decode() == "application/zip 200"
    with zipfile.ZipFile(target) as zf:
        assert sorted(zf.namelist()) == ["image.png", "result.json"]
        assert json.loads(zf.read("result.json"))["count"] == 2

    legacy = tmp_path / "legacy"
    legacy.mkdir()
    curl(
        "-X",
        "POST",
        host.url + LEGACY,
        "-H",
        "Accept: application/zip",
        "-OJ",
        "--output-dir",
        str(legacy),
    )
    assert (legacy / "example.zip").read_bytes() == Path(ZIP_PATH).read_bytes()
