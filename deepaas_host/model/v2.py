"""The model contract that plugins implement (DEEPaaS V2 compatible).

A plugin is a module, an object or a class registered as a setuptools entry point
in the ``deepaas_host.model.v2`` namespace (DEEPaaS's ``deepaas.v2.model`` works too).
It needs two functions, ``get_metadata`` and ``predict``; everything else is
optional and detected: a plugin without ``train`` gets no train route.

A minimal module-style plugin::

    from webargs import fields

    def get_metadata():
        return {"name": "echo", "description": "Returns its input"}

    def get_predict_args():
        return {"text": fields.Str(required=True, metadata={"description": "Input"})}

    def predict(text):
        return {"echo": text}

Register it in the package's ``setup.cfg``::

    [options.entry_points]
    deepaas_host.model.v2 =
        echo = echo_plugin.api

and ``pip install`` the package next to the host.
"""

from __future__ import annotations

import abc
import contextvars
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from marshmallow import fields

__all__ = [
    "BaseModel",
    "File",
    "ProgressCallback",
    "UploadedFile",
    "artifact_dir",
    "report_progress",
    "reporting_progress_to",
    "writing_artifacts_to",
]

ProgressCallback = Callable[[float | None, str], None]

_progress_sink: contextvars.ContextVar[ProgressCallback | None] = contextvars.ContextVar(
    "deepaas_host_progress_sink", default=None
)


_artifact_dir: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "deepaas_host_artifact_dir", default=None
)


def artifact_dir() -> str | None:
    """Directory where the running training job writes the model it produced.

    Whatever ``train`` writes there becomes a new version of the model when the
    job ends well (one file is the artifact; several are zipped into one).
    ``None`` outside a training job::

        def train(epochs=10):
            model = fit(epochs)
            out = artifact_dir()
            if out:
                joblib.dump(model, os.path.join(out, "model.joblib"))
            return {"accuracy": 0.97}
    """
    return _artifact_dir.get()


class writing_artifacts_to:
    """Context manager that sets :func:`artifact_dir` (the host uses it around ``train``)."""

    def __init__(self, path: str | None) -> None:
        self._path = path
        self._token: contextvars.Token[str | None] | None = None

    def __enter__(self) -> None:
        self._token = _artifact_dir.set(self._path)

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _artifact_dir.reset(self._token)


class UploadedFile(NamedTuple):
    """A file sent to a ``File`` argument, as the model receives it.

    The host streams the upload to a temporary file and passes this record to
    ``predict``/``train``; the file is removed after the call returns.

    >>> f = UploadedFile("data", "/tmp/upload-123", "image/png", "cat.png")
    >>> f.original_filename
    'cat.png'
    >>> with open(f.filename, "rb") as fh:  # doctest: +SKIP
    ...     header = fh.read(8)
    """

    #: Name of the argument the file was sent in.
    name: str
    #: Path of the temporary file holding the upload.
    filename: str
    #: Media type the client declared for the file.
    content_type: str
    #: File name the client sent (never trust it as a path).
    original_filename: str


class File(fields.Field):
    """An argument that takes an uploaded file (multipart/form-data).

    Equivalent to DEEPaaS's ``fields.Field(type="file", location="form")``::

        def get_predict_args():
            return {"image": File(required=True, metadata={"description": "A PNG"})}

    The model receives an :class:`UploadedFile`.
    """

    def __init__(self, **kwargs: Any) -> None:
        metadata = dict(kwargs.pop("metadata", None) or {})
        metadata.setdefault("type", "file")
        metadata.setdefault("location", "form")
        super().__init__(metadata=metadata, **kwargs)


def report_progress(fraction: float | None = None, message: str = "") -> None:
    """Report the progress of the running training job.

    Call it from ``train``; ``fraction`` is between 0 and 1 (``None`` when
    unknown) and ``message`` a short human text. The host stores the last
    report on the job record (``GET …/train/{id}`` shows it). Outside a job
    this does nothing, so a plugin can call it unconditionally::

        def train(epochs=3):
            for epoch in range(epochs):
                ...
                report_progress((epoch + 1) / epochs, f"epoch {epoch + 1}/{epochs}")
    """
    sink = _progress_sink.get()
    if sink is not None:
        if fraction is not None:
            fraction = min(max(float(fraction), 0.0), 1.0)
        sink(fraction, str(message))


class reporting_progress_to:
    """Context manager that routes :func:`report_progress` to ``callback``.

    The host uses it around a training call; tests and scripts can too.
    """

    def __init__(self, callback: ProgressCallback | None) -> None:
        self._callback = callback
        self._token: contextvars.Token[ProgressCallback | None] | None = None

    def __enter__(self) -> None:
        self._token = _progress_sink.set(self._callback)

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _progress_sink.reset(self._token)


class BaseModel(abc.ABC):
    """Base class for class-style plugins.

    Inheriting is optional: the host only looks at the methods. A class entry
    point is instantiated once per process, with no arguments.

    Example::

        from marshmallow import Schema, fields
        from deepaas_host.model.v2 import BaseModel

        class Prediction(Schema):
            label = fields.Str(required=True)
            probability = fields.Float(required=True)

        class Response(Schema):
            status = fields.Str(required=True)
            predictions = fields.List(fields.Nested(Prediction))

        class Classifier(BaseModel):
            schema = Response

            def get_metadata(self):
                return {"name": "classifier", "description": "Says cat"}

            def get_predict_args(self):
                return {"text": fields.Str(required=True)}

            def predict(self, text):
                return {"status": "OK",
                        "predictions": [{"label": "cat", "probability": 1.0}]}
    """

    #: Response schema: a marshmallow ``Schema`` subclass, a dict of fields, or
    #: ``None``. With a schema, ``predict`` returns the whole response and the
    #: host validates it; without one the host wraps the result as
    #: ``{"status": "OK", "predictions": result}``.
    schema: type[Any] | Mapping[str, fields.Field] | None = None

    @abc.abstractmethod
    def get_metadata(self) -> Mapping[str, Any]:
        """Return metadata: ``name`` and ``description`` at least.

        Optional keys: ``author``, ``license``, ``version``, ``url``.
        """

    def warm(self) -> None:  # noqa: B027 - optional hook with a no-op default
        """Load weights and prepare; runs once in every worker before it serves."""

    def get_predict_args(self) -> Mapping[str, fields.Field]:
        """Return the predict arguments as a dict of marshmallow/webargs fields.

        Add an ``accept`` string argument whose choices (``validate.OneOf``)
        are media types to let clients negotiate the response type.
        """
        return {}

    @abc.abstractmethod
    def predict(self, **kwargs: Any) -> Any:
        """Run one prediction on the parsed arguments.

        Return JSON-compatible data, ``bytes``, an open binary file, or a path
        (for a non-JSON ``accept`` choice).
        """

    def get_train_args(self) -> Mapping[str, fields.Field]:
        """Return the train arguments (same form as :meth:`get_predict_args`)."""
        return {}

    # ``train`` is deliberately not declared: a plugin without it has no
    # training capability, and the host creates no train route for it.
    #
    # Versions are optional too. A plugin that defines ``load(path)`` can serve
    # any version of its model: ``load`` gets the version's artifact file and
    # returns an object with ``predict(**kwargs)`` (same arguments as the
    # plugin's own predict) and, optionally, ``unload()``. Optional as well:
    # ``engine`` (a string naming the artifact format of trained versions, e.g.
    # "joblib") and ``generate_version_id(job_id, metrics)`` to name them.
