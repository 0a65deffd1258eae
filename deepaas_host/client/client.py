"""``Client``: models, versions, predictions and training jobs of one deepaas-host."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import requests
from requests.auth import AuthBase

from deepaas_host.client._download import DownloadJob, describe, filename_of
from deepaas_host.client._multipart import CHUNK, FilePart, MultipartBody, file_part, is_upload
from deepaas_host.client._progress import progress_bar
from deepaas_host.client._transport import Timeout, Transport
from deepaas_host.client.downloader import Downloader, FileSystemDownloader
from deepaas_host.client.errors import (
    HostError,
    ModelAlreadyExists,
    ModelNotFound,
    TrainingTimeout,
    VersionNotFound,
)
from deepaas_host.jobs.states import FINAL_STATES

__all__ = ["Client", "Document", "PathOrFile"]

#: A JSON object the host answered.
Document = dict[str, Any]
#: A file to upload: a path (``str`` or path object) or a binary file open for reading.
PathOrFile = str | os.PathLike[str] | IO[bytes]


class Client:
    """A deepaas-host seen from Python.

    ``url`` is the host's address, with its base path if it has one
    (``http://host:5000/models``). ``auth`` is any ``requests`` authentication,
    usually :class:`~deepaas_host.client.BearerTokenAuth`. ``timeout`` (seconds)
    applies to connecting and to each wait for data. ``downloader`` decides where
    :meth:`download` puts files (the current folder by default). ``progress``
    shows progress bars: ``None`` (the default) when standard error is a
    terminal. Other keywords go to every ``requests`` call (``verify``,
    ``cert``, ``proxies``, ``headers``, ``hooks``, …)::

        from deepaas_host.client import BearerTokenAuth, Client

        with Client("http://127.0.0.1:5000", BearerTokenAuth(token)) as client:
            client.predict("iris", sepal_length=5.1, sepal_width=3.5,
                           petal_length=1.4, petal_width=0.2)
            client.predict("demo", data=Path("photo.jpg"))            # a file
            png = client.predict("demo", accept="image/png")          # bytes

    Arguments of :meth:`predict` and :meth:`train`: path objects
    (:class:`pathlib.Path`), open binary files and ``bytes`` are uploaded as
    files; every other value, plain strings included, is a value. ``None``
    means not given; lists repeat the argument.
    """

    def __init__(
        self,
        url: str,
        auth: AuthBase | None = None,
        timeout: Timeout = 30,
        downloader: Downloader | None = None,
        *,
        progress: bool | None = None,
        **request_kwargs: Any,
    ) -> None:
        self._http = Transport(url, auth, timeout, request_kwargs)
        self.downloader: Downloader = downloader or FileSystemDownloader()
        self.progress = progress

    @property
    def url(self) -> str:
        return self._http.base_url

    def close(self) -> None:
        """Close the connections kept open to the host."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.url!r})"

    # -- models ----------------------------------------------------------------

    def get_models(self) -> list[Document]:
        """Metadata of every model the host serves."""
        body = self._http.json("GET", self._http.url(slash=True))
        models: list[Document] = body.get("models", []) if isinstance(body, dict) else []
        return models

    def get_model(self, name: str, download_file: bool = False) -> Document:
        """Metadata of model ``name`` (:class:`ModelNotFound` if absent).

        With ``download_file`` the file of the model's default version is
        downloaded (see :meth:`download`); ``"file"`` and ``"file_version"`` in
        the answer give its path and version.
        """
        model: Document = self._http.json("GET", self._http.url(name, slash=True), model=name)
        if download_file:
            default = self._versions(name).get("default")
            if not isinstance(default, str):
                raise VersionNotFound(
                    404, f"Model {name!r} has no default version to download.", model=name
                )
            model["file"] = str(self.download(name, default))
            model["file_version"] = default
        return model

    def find_model(self, name: str, download_file: bool = False) -> Document | None:
        """Like :meth:`get_model`, but ``None`` when the host has no such model."""
        try:
            return self.get_model(name, download_file=download_file)
        except VersionNotFound:
            raise
        except ModelNotFound:
            return None

    # -- versions (the model registry) ------------------------------------------

    def add_model(
        self,
        name: str,
        engine: str,
        model_file: PathOrFile,
        description: str | None = None,
        force: bool = False,
        version: str | None = None,
    ) -> Document:
        """Upload a version of model ``name``; returns the version document.

        ``engine`` says how the host reads the file (``onnx``, ``pickle``,
        ``joblib``, ``river``, ``custom``, …). ``model_file`` is a path or a
        binary file, streamed, never read whole. ``version`` names the version
        (the host makes one up when ``None``). An existing version raises
        :class:`ModelAlreadyExists` unless ``force`` replaces it.
        """
        if isinstance(model_file, str | os.PathLike):
            part = file_part("file", Path(model_file))
        else:
            part = file_part("file", model_file)
            if part.filename == "file":  # a file object without a name
                part = replace(part, filename=f"{name}.{engine.lower()}")
        fields = [("engine", engine), ("force", "true" if force else "false")]
        if version is not None:
            fields.append(("version", version))
        if description is not None:
            fields.append(("description", description))
        bar = progress_bar(self.progress, total=part.size(), desc=f"upload {name}")
        body = MultipartBody(fields, [part], on_progress=bar.update)
        try:
            document: Document = self._http.json(
                "POST",
                self._http.url(name, "versions", slash=True),
                model=name,
                version=version,
                data=body.stream(),
                headers={"Content-Type": body.content_type},
            )
        except HostError as exc:
            if exc.status == 409 and not isinstance(exc, ModelAlreadyExists):
                raise ModelAlreadyExists(
                    409,
                    exc.message,
                    error=exc.error,
                    details=exc.details,
                    request_id=exc.request_id,
                    model=name,
                    version=version,
                ) from exc
            raise
        finally:
            bar.close()
        return document

    def delete_model(self, name: str, version: str) -> None:
        """Delete one version of model ``name``."""
        url = self._http.url(name, "versions", version)
        self._http.request("DELETE", url, model=name, version=version).close()

    def get_versions(self, name: str) -> list[Document]:
        """The versions of model ``name``, newest first (``"default"`` marks the default)."""
        versions: list[Document] = self._versions(name).get("versions", [])
        return versions

    def get_version(self, name: str, version: str) -> Document:
        """One version's document: engine, size, sha256, metrics, loaded, default, …"""
        url = self._http.url(name, "versions", version)
        document: Document = self._http.json("GET", url, model=name, version=version)
        return document

    def download(
        self,
        name: str,
        version: str,
        path: str | os.PathLike[str] | None = None,
        resume: bool = True,
    ) -> Path:
        """Download a version's file; returns where it is.

        ``path`` is a file, or an existing folder (the host's file name is
        used); by default the downloader's folder for the version. The bytes
        are streamed to a ``.part`` file, checked against the host's SHA-256
        (:class:`ChecksumMismatch`) and then renamed into place. With
        ``resume`` an interrupted download (or a shorter file at ``path``)
        continues where it stopped, and a complete file is not fetched again.
        """
        size, sha256, filename = describe(self.get_version(name, version))
        file: Path | None = None
        folder: Path | None = None
        if path is None:
            folder = self.downloader.directory(name, version)
        else:
            target = Path(path).expanduser()
            if target.is_dir() or str(path).endswith(("/", os.sep)):
                folder = target
            else:
                file = target
        if folder is not None and filename is not None:
            file, folder = folder / filename, None
        job = DownloadJob(
            self._http, name, version, size, sha256, file, folder, progress=self.progress
        )
        return job.run(resume)

    def load(self, name: str, version: str) -> Document:
        """Load a version into the host's workers; returns its document."""
        return self._version_action(name, version, "load")

    def unload(self, name: str, version: str) -> Document:
        """Unload a version from the host's workers; returns its document."""
        return self._version_action(name, version, "unload")

    def set_default(self, name: str, version: str) -> Document:
        """Make a version the one predictions use when none is named."""
        return self._version_action(name, version, "default")

    def _versions(self, name: str) -> Document:
        url = self._http.url(name, "versions", slash=True)
        listing: Document = self._http.json("GET", url, model=name)
        return listing

    def _version_action(self, name: str, version: str, action: str) -> Document:
        url = self._http.url(name, "versions", version, action)
        document: Document = self._http.json("POST", url, model=name, version=version)
        return document

    # -- predict ---------------------------------------------------------------

    def predict(
        self,
        model: str,
        version: str | None = None,
        *,
        output: str | os.PathLike[str] | None = None,
        arguments: Mapping[str, Any] | None = None,
        **args: Any,
    ) -> Any:
        """Run a prediction; returns the decoded JSON answer, or the bytes of a
        binary one (a PNG, a zip, …).

        ``version`` selects a version of the model (the default one otherwise).
        With ``output`` a binary answer is streamed to that file (or into that
        folder, under the host's file name) and its path returned. Arguments
        whose names clash with this method's parameters go in ``arguments``.
        """
        params = {"version": version} if version is not None else None
        response = self._http.request(
            "POST",
            self._http.url(model, "predict", slash=True),
            model=model,
            version=version,
            params=params,
            stream=True,
            **_arguments_body({**(arguments or {}), **args}),
        )
        with response:
            if _is_json(response):
                return response.json()
            if output is None:
                return response.content
            return _save(response, Path(output).expanduser(), f"{model}-prediction")

    # Online learning goes here, next to predict, as the host grows it: learn one
    # sample, send a label for an earlier prediction, read live metrics. The same
    # ``_arguments_body`` and ``self._http`` carry those calls.

    # -- training --------------------------------------------------------------

    def train(
        self, model: str, *, arguments: Mapping[str, Any] | None = None, **args: Any
    ) -> Document:
        """Start a training job; returns the job (``id``, ``status``, …)."""
        job: Document = self._http.json(
            "POST",
            self._http.url(model, "train", slash=True),
            model=model,
            **_arguments_body({**(arguments or {}), **args}),
        )
        return job

    def get_training_jobs(self, model: str) -> list[Document]:
        """The model's training jobs, newest first."""
        jobs: list[Document] = self._http.json(
            "GET", self._http.url(model, "train", slash=True), model=model
        )
        return jobs

    def train_status(self, model: str, job_id: str) -> Document:
        """One job: ``status``, ``progress`` (0 to 1), ``progress_message``, ``result``…"""
        job: Document = self._http.json("GET", self._http.url(model, "train", job_id), model=model)
        return job

    def cancel_training(self, model: str, job_id: str) -> Document:
        """Cancel a queued or running job; returns the job."""
        job: Document = self._http.json(
            "DELETE", self._http.url(model, "train", job_id), model=model
        )
        return job

    def wait_for_training(
        self, model: str, job_id: str, timeout: float | None = None, poll: float = 0.5
    ) -> Document:
        """Poll a job until it is ``done``, ``error`` or ``cancelled``; returns it.

        :class:`TrainingTimeout` after ``timeout`` seconds. In a terminal a
        progress bar follows the job's progress and message.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        bar = progress_bar(self.progress, total=100, desc=f"{model} training", unit="%")
        try:
            while True:
                job = self.train_status(model, job_id)
                fraction = job.get("progress")
                if isinstance(fraction, int | float):
                    bar.update(round(fraction * 100, 1) - bar.n)
                if job.get("progress_message"):
                    bar.set_postfix_str(str(job["progress_message"])[:60], refresh=True)
                if job.get("status") in FINAL_STATES:
                    return job
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise TrainingTimeout(model, job_id, timeout or 0.0, job)
                    time.sleep(min(poll, remaining))
                else:
                    time.sleep(poll)
        finally:
            bar.close()


def _is_json(response: requests.Response) -> bool:
    ctype = response.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    return ctype == "application/json" or ctype.endswith("+json")


def _save(response: requests.Response, output: Path, fallback: str) -> Path:
    target = output / filename_of(response, fallback) if output.is_dir() else output
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as fh:
        for chunk in response.iter_content(CHUNK):
            fh.write(chunk)
    return target


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value)


def _arguments_body(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """``requests`` keywords for model arguments: a JSON object, or a streamed
    multipart body when a file is among them."""
    given = {name: value for name, value in arguments.items() if value is not None}
    if not any(
        is_upload(v) or (isinstance(v, list | tuple) and any(map(is_upload, v)))
        for v in given.values()
    ):
        return {"json": given} if given else {}
    fields: list[tuple[str, str]] = []
    files: list[FilePart] = []
    for name, value in given.items():
        for item in value if isinstance(value, list | tuple) else [value]:
            if is_upload(item):
                files.append(file_part(name, item))
            elif item is not None:
                fields.append((name, _text(item)))
    body = MultipartBody(fields, files)
    return {"data": body.stream(), "headers": {"Content-Type": body.content_type}}
