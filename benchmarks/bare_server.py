"""Baseline: a bare aiohttp app doing the same work as the host, in one process.

Parses the demo model's predict arguments with webargs (query, form or multipart),
calls the demo plugin's ``predict`` in-process and sends the JSON answer; also a
``GET /v2/models/`` that returns the metadata. No worker pool, no middleware.

    python benchmarks/bare_server.py PORT
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import marshmallow
from aiohttp import web
from deepaas_host_demo.model import DemoModel
from webargs.aiohttpparser import AIOHTTPParser

from deepaas_host.model.v2 import UploadedFile


def make_app() -> web.Application:
    model = DemoModel()
    model.warm()
    args = dict(model.get_predict_args())
    args.pop("data")
    schema = marshmallow.Schema.from_dict(args)(unknown=marshmallow.RAISE)
    parser = AIOHTTPParser()
    tmpdir = tempfile.mkdtemp(prefix="bare-")

    async def predict(request: web.Request) -> web.Response:
        upload = None
        if request.content_type == "multipart/form-data":
            data: dict[str, Any] = {}
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                if part.filename:  # type: ignore[union-attr]
                    path = Path(tempfile.mkstemp(dir=tmpdir)[1])
                    with path.open("wb") as fh:
                        while chunk := await part.read_chunk(1 << 16):  # type: ignore[union-attr]
                            fh.write(chunk)
                    upload = UploadedFile(
                        "data", str(path), "application/octet-stream", part.filename
                    )
                else:
                    data[part.name] = await part.text()  # type: ignore[union-attr]
            kwargs = schema.load(data)
        else:
            kwargs = await parser.parse(
                schema, request, location="querystring" if not request.body_exists else "form"
            )
        try:
            result = model.predict(data=upload, **kwargs)
        finally:
            if upload is not None:
                Path(upload.filename).unlink()
        return web.Response(
            body=json.dumps({"status": "OK", "predictions": result}).encode(),
            content_type="application/json",
        )

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"models": [model.get_metadata()]})

    app = web.Application(client_max_size=200 << 20)
    app.router.add_post("/v2/models/demo/predict/", predict)
    app.router.add_get("/v2/models/", models)
    return app


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    web.run_app(make_app(), host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
