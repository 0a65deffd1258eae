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

Input the argument schema cannot judge (two arguments that exclude each other,
a file whose content is wrong) is refused from ``predict``, ``train`` or
``learn`` by raising :class:`InvalidInput`: the client gets a 422 naming the
argument, as for any other bad argument. Any other exception is the model's
failure (a 500 naming the exception).
"""

from __future__ import annotations

import abc
import contextvars
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from marshmallow import fields

__all__ = [
    "BaseModel",
    "File",
    "InvalidInput",
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


class InvalidInput(ValueError):
    """Raised by ``predict``, ``train`` or ``learn``: the caller's input is wrong.

    The host answers the call with a 422 ``ArgumentError`` whose ``details``
    name the argument, exactly like a value its argument schema refused; a
    training job that raises it fails with the same message. Raise it for
    what the schema cannot express: arguments that must come together or
    exclude each other, the content of an uploaded file, a value that only the
    model can judge. Everything else a plugin raises is reported as the
    model's own failure (a 500 ``ModelError``).

    ``argument`` names the argument at fault, or several (a sequence of names)
    when the fault is their combination; without it the input as a whole is
    named ``_input``. It is a ``ValueError``, so code that catches those still
    does::

        from marshmallow import fields
        from deepaas_host.model.v2 import File, InvalidInput

        def get_predict_args():
            return {"text": fields.Str(), "data": File()}

        def predict(text=None, data=None):
            if (text is None) == (data is None):
                raise InvalidInput("give either text or data", argument=("text", "data"))
            if data is not None:
                with open(data.filename, "rb") as fh:
                    try:
                        text = fh.read().decode("utf-8")
                    except UnicodeDecodeError:
                        raise InvalidInput("the file is not UTF-8 text", argument="data")
            return {"words": len(text.split())}

    The client sees::

        422 {"error": "ArgumentError",
             "message": "Model 'reader' refused the input: the file is not UTF-8 text",
             "details": {"data": ["the file is not UTF-8 text"]}, ...}

    >>> error = InvalidInput("give all four measurements", argument="sepal_width")
    >>> error.messages()
    {'sepal_width': ['give all four measurements']}
    >>> InvalidInput("no input").messages()
    {'_input': ['no input']}

    A ``marshmallow.ValidationError`` raised by a plugin (as DEEPaaS-era
    plugins do) is taken the same way, with its own messages.
    """

    def __init__(self, message: str, *, argument: str | Iterable[str] | None = None) -> None:
        super().__init__(message)
        self.message = str(message)
        if argument is None:
            names: tuple[str, ...] = ()
        elif isinstance(argument, str):
            names = (argument,)
        else:
            names = tuple(str(name) for name in argument)
        #: Names of the arguments at fault; empty when the input as a whole is.
        self.arguments = names

    def messages(self) -> dict[str, list[str]]:
        """The ``details`` of the 422: ``{argument: [message]}`` for each argument."""
        return {name: [self.message] for name in self.arguments or ("_input",)}

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled as itself (``argument`` is keyword-only, so the default would lose it).
        return (_rebuild_invalid_input, (type(self), self.message, self.arguments))


def _rebuild_invalid_input(
    cls: type[InvalidInput], message: str, arguments: tuple[str, ...]
) -> InvalidInput:
    return cls(message, argument=arguments or None)


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
