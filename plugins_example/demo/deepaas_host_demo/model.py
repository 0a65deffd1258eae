"""The demo model: every argument kind, three response types, a training loop.

It computes nothing useful; it exists to exercise the host end to end:

* ``predict`` echoes its arguments as JSON (with ``pid``/``warm_pid`` so a
  caller can see which worker served it and that ``warm`` ran there), or draws
  a PNG, or packs both into a zip, depending on ``accept``;
* ``fail`` makes it raise or kill its worker, ``sleep`` makes it slow;
* ``train`` sleeps through its epochs, reporting progress, and returns metrics.

The JSON path is kept cheap (no Pillow import) because it is used for
throughput measurements.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Mapping
from typing import IO, Any

from marshmallow import fields, validate

from deepaas_host.model.v2 import (
    BaseModel,
    File,
    UploadedFile,
    artifact_dir,
    report_progress,
)

from . import __version__

#: Labels the ``label`` argument accepts.
LABELS = ("cat", "dog", "bird")
#: Media types ``predict`` can answer with, JSON first (the default).
MEDIA_TYPES = ("application/json", "application/zip", "image/png")
#: Exit status of a worker killed with ``fail="exit"``.
EXIT_STATUS = 13


def describe_file(upload: UploadedFile) -> dict[str, Any]:
    """Summarise an uploaded file: names, size and SHA-256 of its content."""
    digest = hashlib.sha256()
    size = 0
    with open(upload.filename, "rb") as fh:
        while chunk := fh.read(1 << 16):
            digest.update(chunk)
            size += len(chunk)
    return {
        "name": upload.name,
        "original_filename": upload.original_filename,
        "content_type": upload.content_type,
        "size": size,
        "sha256": digest.hexdigest(),
    }


class DemoModel(BaseModel):
    """Demo model showing every kind of argument and response the host supports."""

    def __init__(self) -> None:
        """Create the model; nothing is loaded until :meth:`warm`."""
        #: Process id of the process that ran :meth:`warm` (``None`` before).
        self.warmed_pid: int | None = None
        #: How many times :meth:`warm` ran on this instance.
        self.warm_count = 0

    # -- metadata and warm-up --------------------------------------------------

    def get_metadata(self) -> Mapping[str, Any]:
        """Return the model metadata."""
        return {
            "name": "demo",
            "description": (
                "Demo model for deepaas-host: echoes its arguments as JSON, draws "
                "them as a PNG or packs both into a zip; trains by sleeping."
            ),
            "author": "deepaas-host contributors",
            "license": "Apache-2.0",
            "version": __version__,
            "url": "https://example.org/deepaas-host/plugins/demo",
        }

    def warm(self) -> None:
        """Record which process warmed the model (visible in JSON predictions)."""
        self.warmed_pid = os.getpid()
        self.warm_count += 1

    # -- predict ---------------------------------------------------------------

    def get_predict_args(self) -> Mapping[str, fields.Field]:
        """Return one argument of every kind the host handles."""
        return {
            "label": fields.Str(
                load_default="cat",
                validate=validate.OneOf(LABELS),
                metadata={"description": "Label to draw and echo."},
            ),
            "count": fields.Int(
                load_default=1,
                validate=validate.Range(min=1, max=100),
                metadata={"description": "Number of values (and bars in the PNG)."},
            ),
            "scale": fields.Float(
                load_default=1.0,
                metadata={"description": "Multiplier of the values (bar heights)."},
            ),
            "flag": fields.Bool(
                load_default=False,
                metadata={"description": "A boolean, echoed back."},
            ),
            "tags": fields.List(
                fields.Str(),
                required=False,
                metadata={"description": "Optional list of strings, echoed back."},
            ),
            "data": File(
                required=False,
                load_default=None,
                metadata={
                    "description": ("Optional file; the answer gives its name, size and SHA-256.")
                },
            ),
            "accept": fields.Str(
                load_default="application/json",
                validate=validate.OneOf(MEDIA_TYPES),
                metadata={"description": "Media type of the response."},
            ),
            "fail": fields.Str(
                load_default="none",
                validate=validate.OneOf(["none", "raise", "exit"]),
                metadata={
                    "description": (
                        "Make the call fail: 'raise' raises ValueError, 'exit' "
                        f"kills the worker process (exit status {EXIT_STATUS})."
                    )
                },
            ),
            "sleep": fields.Float(
                load_default=0.0,
                validate=validate.Range(min=0, max=30),
                metadata={"description": "Seconds to sleep before answering."},
            ),
        }

    def predict(  # type: ignore[override]
        self,
        *,
        label: str = "cat",
        count: int = 1,
        scale: float = 1.0,
        flag: bool = False,
        tags: list[str] | None = None,
        data: UploadedFile | None = None,
        accept: str = "application/json",
        fail: str = "none",
        sleep: float = 0.0,
    ) -> dict[str, Any] | bytes | IO[bytes]:
        """Echo the arguments as JSON, or draw them as PNG bytes or a zip file.

        ``sleep`` happens first, then ``fail``, then the answer is built.
        ``image/png`` returns ``bytes``; ``application/zip`` returns an open
        binary file positioned at its start (an anonymous temporary file that
        disappears when closed).
        """
        if sleep > 0:
            time.sleep(sleep)
        if fail == "raise":
            raise ValueError("demo model failure requested with fail='raise'")
        if fail == "exit":
            os._exit(EXIT_STATUS)

        result = self._result(
            label=label,
            count=count,
            scale=scale,
            flag=flag,
            tags=tags,
            data=data,
            accept=accept,
            sleep=sleep,
        )
        if accept == "application/json":
            return result
        if accept == "image/png":
            return self._png(label, result["values"])
        if accept == "application/zip":
            return self._zip(result)
        raise ValueError(f"unsupported media type {accept!r}")

    def _result(
        self,
        *,
        label: str,
        count: int,
        scale: float,
        flag: bool,
        tags: list[str] | None,
        data: UploadedFile | None,
        accept: str,
        sleep: float,
    ) -> dict[str, Any]:
        """Build the JSON answer (plain JSON types only)."""
        return {
            "label": label,
            "count": count,
            "scale": scale,
            "flag": flag,
            "tags": list(tags) if tags is not None else None,
            # (i + 1) / count is at most 1, so a finite scale never overflows to inf
            "values": [scale * ((i + 1) / count) for i in range(count)],
            "data": describe_file(data) if data is not None else None,
            "accept": accept,
            "sleep": sleep,
            "pid": os.getpid(),
            "warm_pid": self.warmed_pid,
            "warm_count": self.warm_count,
        }

    @staticmethod
    def _png(label: str, values: list[float]) -> bytes:
        """Draw the values as bars under a caption; return PNG bytes."""
        from .render import draw_bars  # Pillow is only imported for images

        return draw_bars(label, values)

    def _zip(self, result: dict[str, Any]) -> IO[bytes]:
        """Pack ``result.json`` and ``image.png`` into a zip; return it open."""
        png = self._png(result["label"], result["values"])
        out = tempfile.TemporaryFile()  # noqa: SIM115 - returned open
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("result.json", json.dumps(result, indent=2))
            zf.writestr("image.png", png)
        out.seek(0)
        return out

    # -- train -----------------------------------------------------------------

    def get_train_args(self) -> Mapping[str, fields.Field]:
        """Return the training arguments."""
        return {
            "epochs": fields.Int(
                load_default=5,
                validate=validate.Range(min=1, max=1000),
                metadata={"description": "Number of epochs."},
            ),
            "duration": fields.Float(
                load_default=3.0,
                validate=validate.Range(min=0, max=600),
                metadata={"description": "Total training time in seconds."},
            ),
            "fail": fields.Bool(
                load_default=False,
                metadata={"description": "Raise an error after the last epoch."},
            ),
            "data": File(
                required=False,
                load_default=None,
                metadata={"description": "Optional training data; its size is used."},
            ),
            "helper_process": fields.Bool(
                load_default=False,
                metadata={
                    "description": "Run a helper child process during training "
                    "(as data loaders do); cancelling stops it too."
                },
            ),
        }

    def train(
        self,
        *,
        epochs: int = 5,
        duration: float = 3.0,
        fail: bool = False,
        data: UploadedFile | None = None,
        helper_process: bool = False,
    ) -> dict[str, Any]:
        """Sleep ``duration / epochs`` per epoch, reporting progress; return metrics.

        The uploaded ``data`` file is read when training starts, which shows it
        still exists when a queued job finally runs.
        """
        started = time.monotonic()
        data_info = describe_file(data) if data is not None else None
        data_bytes = data_info["size"] if data_info is not None else None
        helper = None
        if helper_process:
            helper = subprocess.Popen(
                [sys.executable, "-c", "import time; time.sleep(600)"],
                stdin=subprocess.DEVNULL,
            )
        # Every report names the helper, so a client can always find it.
        suffix = f", helper_pid={helper.pid}" if helper is not None else ""
        report_progress(0.0, f"starting: {epochs} epochs, data_bytes={data_bytes}{suffix}")
        loss = 1.0
        try:
            for epoch in range(1, epochs + 1):
                time.sleep(duration / epochs)
                loss = 1.0 / (1.0 + epoch)
                report_progress(epoch / epochs, f"epoch {epoch}/{epochs} loss={loss:.4f}{suffix}")
        finally:
            if helper is not None:
                helper.kill()
                helper.wait()
        if fail:
            raise RuntimeError(
                f"demo training failure requested with fail=True after {epochs} epochs"
            )
        metrics = {
            "epochs": epochs,
            "loss": loss,
            "accuracy": 1.0 - loss / 2.0,
            "data_bytes": data_bytes,
            "data_sha256": data_info["sha256"] if data_info is not None else None,
            "elapsed": round(time.monotonic() - started, 3),
            "pid": os.getpid(),
        }
        out = artifact_dir()
        if out is not None:
            # The "trained model": a JSON file that load() serves as a version.
            with open(os.path.join(out, "demo-model.json"), "w") as fh:
                json.dump({"epochs": epochs, "loss": loss}, fh)
        return metrics

    # -- versions ----------------------------------------------------------------

    def load(self, path: str) -> DemoVersion:
        """Serve a version: any JSON object; predictions then carry it as ``version``."""
        with open(path, "rb") as fh:
            content = json.loads(fh.read())
        if not isinstance(content, dict):
            raise ValueError(f"a demo version is a JSON object, not {type(content).__name__}")
        return DemoVersion(self, content)


class DemoVersion:
    """A loaded version of the demo model."""

    def __init__(self, model: DemoModel, content: dict[str, Any]) -> None:
        self.model = model
        self.content = content
        self.loaded_pid = os.getpid()

    def predict(self, **kwargs: Any) -> Any:
        result = self.model.predict(**kwargs)
        if isinstance(result, dict):
            result = {**result, "version": self.content, "version_pid": self.loaded_pid}
        return result

    def unload(self) -> None:
        self.content = {}
