"""``Client``: models, versions, predictions, training jobs and online models of one
deepaas-host."""

from __future__ import annotations

import codecs
import hashlib
import itertools
import json
import os
import re
import time
from collections.abc import Iterable, Iterator, Mapping, Sized
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import IO, Any, overload
from urllib.parse import quote

import requests
from requests.auth import AuthBase

from deepaas_host.client._download import DownloadJob, describe, filename_of
from deepaas_host.client._multipart import CHUNK, FilePart, MultipartBody, file_part, is_upload
from deepaas_host.client._progress import progress_bar
from deepaas_host.client._transport import Timeout, Transport
from deepaas_host.client.downloader import Downloader, FileSystemDownloader, safe_name
from deepaas_host.client.errors import (
    ChecksumMismatch,
    HostError,
    HostUnreachable,
    ModelAlreadyExists,
    ModelNotFound,
    TrainingTimeout,
    VersionNotFound,
)
from deepaas_host.jobs.states import FINAL_STATES

__all__ = ["Client", "Document", "PathOrFile", "PredictionNotFound"]

#: A JSON object the host answered.
Document = dict[str, Any]
#: A file to upload: a path (``str`` or path object) or a binary file open for reading.
PathOrFile = str | os.PathLike[str] | IO[bytes]


class PredictionNotFound(HostError):
    """404 from :meth:`Client.label` (or a bulk ``label``): no prediction with this id
    is waiting for a label: it is unknown, was labelled already, or expired."""


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

            client.create_model("phishing", name="pages")             # online learning
            answer = client.predict("pages", features={"https": 1.0})
            client.label("pages", answer["id"], True)                 # the label, later
            client.learn("pages", {"https": 0.0}, False)
            client.metrics("pages")["overall"]                        # {"Accuracy": …}

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

    def pin_version(self, name: str, version: str) -> Document:
        """Pin a version: the host keeps it when it prunes older trained versions."""
        return self._version_action(name, version, "pin")

    def unpin_version(self, name: str, version: str) -> Document:
        """Unpin a version: a later training may prune it again."""
        return self._version_action(name, version, "unpin")

    def _versions(self, name: str) -> Document:
        url = self._http.url(name, "versions", slash=True)
        listing: Document = self._http.json("GET", url, model=name)
        return listing

    def _version_action(self, name: str, version: str, action: str) -> Document:
        url = self._http.url(name, "versions", version, action)
        document: Document = self._http.json("POST", url, model=name, version=version)
        return document

    # -- predict ---------------------------------------------------------------

    @overload
    def predict(
        self,
        model: str,
        *,
        features: Mapping[str, Any] | str,
        identifier: str | None = None,
        keep: bool | None = None,
    ) -> Document: ...

    @overload
    def predict(
        self,
        model: str,
        version: str | None = None,
        *,
        output: str | os.PathLike[str] | None = None,
        arguments: Mapping[str, Any] | None = None,
        **args: Any,
    ) -> Any: ...

    def predict(
        self,
        model: str,
        version: str | None = None,
        *,
        output: str | os.PathLike[str] | None = None,
        arguments: Mapping[str, Any] | None = None,
        features: Mapping[str, Any] | str | None = None,
        **args: Any,
    ) -> Any:
        """Run a prediction; returns the decoded JSON answer, or the bytes of a
        binary one (a PNG, a zip, …).

        ``version`` selects a version of the model (the default one otherwise).
        With ``output`` a binary answer is streamed to that file (or into that
        folder, under the host's file name) and its path returned. Arguments
        whose names clash with this method's parameters go in ``arguments``.

        With ``features`` the call goes to the *online* model ``model``
        (``/v2/online/{model}/predict/``) and returns its answer: ``prediction``,
        ``probabilities`` (classifiers), ``id`` and ``seq``. The prediction is
        kept, under ``identifier`` (or an id the host makes up), so that
        :meth:`label` can score it later; ``keep=False`` does not keep it. An
        argument named ``features`` of a served (non-online) model goes in
        ``arguments``.
        """
        if features is not None:
            if version is not None or output is not None or arguments is not None:
                raise TypeError(
                    "An online prediction (features=…) takes no version, output or arguments."
                )
            identifier = args.pop("identifier", None)
            keep = args.pop("keep", None)
            if args:
                raise TypeError(
                    "An online prediction takes features, identifier and keep, not "
                    + ", ".join(sorted(args))
                    + "."
                )
            body = {"features": features, "id": identifier, "keep": keep}
            return self._online_op(model, "predict", body)
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

    # -- online learning ---------------------------------------------------------
    #
    # Online models live under ``/v2/online/``: each learns one sample at a time,
    # predicts, takes the label of an earlier prediction later, and keeps live
    # metrics. A missing online model raises :class:`ModelNotFound`, an existing
    # name on creation :class:`ModelAlreadyExists`, a label for an unknown,
    # already labelled or expired prediction :class:`PredictionNotFound` (404).

    def create_model(
        self,
        plugin: str | None = None,
        *,
        name: str | None = None,
        model_file: PathOrFile | None = None,
        flavor: str | None = None,
        description: str | None = None,
    ) -> Document:
        """Create an online model; returns its document (``name``, ``flavor``, ``links``…).

        Give either ``plugin``, the online plugin whose fresh pipeline the model
        starts from (``flavor`` then defaults to the plugin's), or ``model_file``,
        a pickled river model (a path or a binary file, streamed, never read
        whole) together with its ``flavor`` (``regression``, ``binary``,
        ``multiclass``, ``clustering``, ``anomaly`` or ``custom``). Without
        ``name`` the host makes one up. An existing name raises
        :class:`ModelAlreadyExists`.
        """
        if (plugin is None) == (model_file is None):
            raise ValueError("create_model takes either a plugin or a model_file, not both.")
        url = self._online_url(slash=True)
        if model_file is None:
            body = {"plugin": plugin, "name": name, "flavor": flavor, "description": description}
            document: Document = self._online_json(
                "POST", url, name, json={k: v for k, v in body.items() if v is not None}
            )
            return document
        if flavor is None:
            raise ValueError("A pickled model needs its flavor (regression, binary, …).")
        if isinstance(model_file, str | os.PathLike):
            part = file_part("file", Path(model_file))
        else:
            part = file_part("file", model_file)
            if part.filename == "file":  # a file object without a name
                part = replace(part, filename=f"{name or 'model'}.pkl")
        fields = [("flavor", flavor)]
        if name is not None:
            fields.append(("name", name))
        if description is not None:
            fields.append(("description", description))
        bar = progress_bar(self.progress, total=part.size(), desc=f"upload {name or part.filename}")
        multipart = MultipartBody(fields, [part], on_progress=bar.update)
        try:
            document = self._online_json(
                "POST",
                url,
                name,
                data=multipart.stream(),
                headers={"Content-Type": multipart.content_type},
            )
        finally:
            bar.close()
        return document

    def get_online_models(self) -> list[Document]:
        """Documents of every online model, sorted by name."""
        body = self._online_json("GET", self._online_url(slash=True), None)
        models: list[Document] = body.get("models", []) if isinstance(body, dict) else []
        return models

    def get_online_model(self, name: str) -> Document:
        """One online model: ``flavor``, ``learned``, ``labelled``, ``seq``, ``links``…"""
        document: Document = self._online_json("GET", self._online_url(name), name)
        return document

    def delete_online_model(self, name: str) -> None:
        """Delete online model ``name`` with everything it learned."""
        self._online_request("DELETE", self._online_url(name), name).close()

    def download_model(self, name: str, path: str | os.PathLike[str] | None = None) -> Path:
        """Download online model ``name`` as it is now, pickled; returns where it is.

        ``path`` is a file, or an existing folder (the host's file name,
        ``<name>.pkl``, is used); by default the downloader's folder for
        ``(name, "online")``. The bytes are streamed to a ``.part`` file,
        checked against the host's ``X-Checksum-SHA256``
        (:class:`ChecksumMismatch`, version ``"online"``) and then renamed
        into place. Unpickling the file needs the model's libraries (river, …).
        """
        if path is None:
            target: Path = self.downloader.directory(name, "online")
        else:
            target = Path(path).expanduser()
        is_folder = path is None or target.is_dir() or str(path).endswith(("/", os.sep))
        url = self._online_url(name, "download")
        with self._online_request("GET", url, name, stream=True) as response:
            if is_folder:
                target = target / filename_of(response, f"{safe_name(name)}.pkl")
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + ".part")
            expected = (response.headers.get("X-Checksum-SHA256") or "").lower()
            digest = hashlib.sha256()
            total = response.headers.get("Content-Length")
            bar = progress_bar(
                self.progress,
                total=int(total) if total and total.isdigit() else None,
                desc=f"{name} download",
            )
            try:
                with partial.open("wb") as out:
                    for chunk in _chunks(response, self.url):
                        out.write(chunk)
                        digest.update(chunk)
                        bar.update(len(chunk))
            except BaseException:
                partial.unlink(missing_ok=True)
                raise
            finally:
                bar.close()
        actual = digest.hexdigest()
        if expected and actual != expected:
            partial.unlink(missing_ok=True)
            raise ChecksumMismatch(name, "online", expected, actual)
        partial.replace(target)
        return target

    def learn(
        self,
        model: str,
        features: Mapping[str, Any] | str | None = None,
        ground_truth: Any = None,
        identifier: str | None = None,
    ) -> Document:
        """Learn one sample; returns ``prediction`` (the one the metrics used), ``seq``
        and ``learned``.

        ``features`` is a mapping (or a text, for text models); ``ground_truth``
        a number (regression), a class (binary, multiclass), nothing
        (clustering). With ``identifier`` of a kept prediction (see
        :meth:`predict`) that prediction is the one scored, and ``features``
        may be left out: the kept ones are learned.
        """
        body = {"features": features, "ground_truth": ground_truth, "id": identifier}
        return self._online_op(model, "learn", body)

    def label(self, model: str, identifier: str, ground_truth: Any) -> Document:
        """The ground truth of an earlier prediction (by the ``id`` it was answered
        with): the model learns it and scores the prediction. Returns
        ``prediction``, ``seq`` and ``learned``; a prediction that is unknown,
        labelled already or expired raises :class:`PredictionNotFound`."""
        body = {"id": identifier, "ground_truth": ground_truth}
        return self._online_op(model, "label", body)

    def learn_many(
        self,
        model: str,
        samples: Iterable[Mapping[str, Any]],
        op: str = "learn",
        chunk_size: int = 1000,
    ) -> Iterator[Document]:
        """Send many operations through the bulk route; yields one answer per sample,
        in order.

        ``op`` is ``learn``, ``predict`` or ``label``; each sample is a mapping
        with the fields of that route (``features``, ``ground_truth``, ``id``,
        ``keep``). Samples are read lazily and sent ``chunk_size`` per request,
        each request's body streamed as it is read. A sample the host refuses
        does not stop the others: its answer is ``{"error": {"code", "error",
        "message", "details": {"line", "fields"}}}`` (``line`` counts from 1
        within its request). Errors of the whole request (no such model, a bad
        ``op``) raise as usual.

        Keep ``chunk_size`` to a few thousand: a request's answers are read once
        its whole body is sent, while the host starts answering after its first
        few thousand lines, so one huge request stalls once the connection's
        buffers are full (and ends in :class:`HostUnreachable` on the timeout).
        """
        if op not in ("learn", "predict", "label"):
            raise ValueError(f"op is one of learn, predict, label, not {op!r}.")
        if chunk_size < 1:
            raise ValueError("chunk_size must be at least 1.")
        return self._bulk(model, samples, op, chunk_size)

    def _bulk(
        self, model: str, samples: Iterable[Mapping[str, Any]], op: str, chunk_size: int
    ) -> Iterator[Document]:
        total = len(samples) if isinstance(samples, Sized) else None
        bar = progress_bar(self.progress, total=total, desc=f"{op} {model}", unit="samples")
        url = self._online_url(model, "bulk", slash=True)
        iterator = iter(samples)
        try:
            while True:
                try:
                    first = next(iterator)
                except StopIteration:
                    return
                sent = [0]
                chunk = itertools.chain([first], itertools.islice(iterator, chunk_size - 1))
                response = self._online_request(
                    "POST",
                    url,
                    model,
                    params={"op": op},
                    data=_ndjson(chunk, sent),
                    headers={"Content-Type": "application/x-ndjson"},
                    stream=True,
                )
                answered = 0
                with response:
                    for line in _lines(_chunks(response, self.url)):
                        if not line.strip():
                            continue
                        answered += 1
                        bar.update(1)
                        yield json.loads(line)
                if answered != sent[0]:
                    raise HostError(
                        response.status_code,
                        f"The bulk {op} of {model!r} answered {answered} lines "
                        f"for {sent[0]} samples.",
                        model=model,
                    )
        finally:
            bar.close()

    def metrics(self, model: str) -> Document:
        """The model's metrics: ``overall`` since it was created and ``rolling`` over
        the last ``window`` scored samples (``{"MAE": …, "RMSE": …}``, …)."""
        document: Document = self._online_json("GET", self._online_url(model, "metrics"), model)
        return document

    def stats(self, model: str) -> Document:
        """Request counts, errors and latency percentiles (ms) for ``predict``,
        ``learn`` and ``label`` since the host started, and ``totals``."""
        document: Document = self._online_json("GET", self._online_url(model, "stats"), model)
        return document

    def stream_metrics(self, model: str, interval: float = 1.0) -> Iterator[Document]:
        """Follow the model's metrics: yields a metrics document (as :meth:`metrics`)
        each time they change, checked every ``interval`` seconds (0.1 to 3600).

        The iterator runs until the host ends the stream; ``close()`` it (or
        leave a ``with contextlib.closing(...)`` block) to stop.
        """
        url = self._online_url(model, "stream", "metrics")
        for event, data in self._sse(url, model, {"interval": interval}, interval + 30):
            if event == "error":
                raise _stream_error(data, model)
            if event == "metrics" and isinstance(data, dict):
                yield data

    def stream_events(self, model: str) -> Iterator[Document]:
        """Follow what happens to the model: yields one dict per ``predict``,
        ``learn`` or ``label`` (``"type"`` says which; with ``features``,
        ``ground_truth``, ``prediction``, ``seq``…), and ``{"type": "dropped",
        "dropped": n}`` when this follower was too slow and ``n`` events were
        skipped. Only events after the connection are sent.

        The iterator runs until the host ends the stream; ``close()`` it to stop.
        """
        url = self._online_url(model, "stream", "events")
        for event, data in self._sse(url, model, None, 60):
            if event == "error":
                raise _stream_error(data, model)
            yield (
                {**data, "type": event} if isinstance(data, dict) else {"type": event, "data": data}
            )

    def _online_url(self, *parts: str, slash: bool = False) -> str:
        url = "/".join([f"{self.url}/v2/online", *(quote(p, safe="") for p in parts)])
        return url + "/" if slash or not parts else url

    def _online_request(
        self, method: str, url: str, model: str | None, **kwargs: Any
    ) -> requests.Response:
        try:
            return self._http.request(method, url, model=model, **kwargs)
        except HostError as exc:
            typed = _online_error(exc, model)
            if typed is exc:
                raise
            raise typed from exc

    def _online_json(self, method: str, url: str, model: str | None, **kwargs: Any) -> Any:
        try:
            return self._http.json(method, url, model=model, **kwargs)
        except HostError as exc:
            typed = _online_error(exc, model)
            if typed is exc:
                raise
            raise typed from exc

    def _online_op(self, model: str, kind: str, body: Mapping[str, Any]) -> Document:
        given = {key: value for key, value in body.items() if value is not None}
        url = self._online_url(model, kind, slash=True)
        document: Document = self._online_json("POST", url, model, json=given)
        return document

    def _sse(
        self, url: str, model: str, params: Mapping[str, Any] | None, min_read: float
    ) -> Iterator[tuple[str, Any]]:
        """``(event, decoded data)`` of each server-sent event at ``url``."""
        response = self._online_request(
            "GET",
            url,
            model,
            params=params,
            stream=True,
            timeout=_stream_timeout(self._http.timeout, min_read),
            headers={"Accept": "text/event-stream"},
        )
        with response:
            event = "message"
            data: list[str] = []
            for line in _lines(_chunks(response, self.url)):
                if not line:
                    if data:
                        yield event, json.loads("\n".join(data))
                    event, data = "message", []
                    continue
                if line.startswith(":"):
                    continue  # a comment: keep-alive
                field, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if field == "event":
                    event = value
                elif field == "data":
                    data.append(value)

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


# -- online learning helpers ------------------------------------------------------------

#: Host error names under ``/v2/online/`` and the client error each one raises.
_ONLINE_ERRORS: dict[str, type[HostError]] = {
    "OnlineModelNotFound": ModelNotFound,
    "PredictionNotFound": PredictionNotFound,
    "Conflict": ModelAlreadyExists,
}
_EOL = re.compile(r"\r\n|\r|\n")
_NDJSON_PIECE = 1 << 16


def _online_error(exc: HostError, model: str | None) -> HostError:
    """The typed error for an online route's error (the host names its own kinds)."""
    cls = _ONLINE_ERRORS.get(exc.error or "")
    if cls is None or type(exc) is cls:
        return exc
    return cls(
        exc.status,
        exc.message,
        error=exc.error,
        details=exc.details,
        request_id=exc.request_id,
        model=exc.model if exc.model is not None else model,
        version=exc.version,
    )


def _stream_error(data: Any, model: str) -> HostError:
    """The error an ``event: error`` of a stream carries (the host's error shape)."""
    body = data if isinstance(data, Mapping) else {}
    code = body.get("code")
    message = body.get("message")
    name = body.get("error")
    exc = HostError(
        code if isinstance(code, int) else 500,
        message if isinstance(message, str) and message else "The host ended the stream.",
        error=name if isinstance(name, str) else None,
        details=body.get("details"),
        model=model,
    )
    return _online_error(exc, model)


def _stream_timeout(timeout: Timeout, min_read: float) -> Timeout:
    """The client's timeout, with a read timeout long enough for a stream's pauses."""
    if timeout is None:
        return None
    connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
    return (connect, max(read, min_read))


def _chunks(response: requests.Response, host: str, size: int | None = None) -> Iterator[bytes]:
    """The body as it arrives; a broken connection raises :class:`HostUnreachable`."""
    try:
        yield from response.iter_content(size)
    except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
        raise HostUnreachable(f"The connection to {host} broke while reading: {exc}") from exc


def _lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """UTF-8 lines of a byte stream, without their ends (``\\r\\n``, ``\\n`` or ``\\r``)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    buffer = ""
    for chunk in chunks:
        buffer += decoder.decode(chunk)
        start = 0
        for end in _EOL.finditer(buffer):
            if end.group() == "\r" and end.end() == len(buffer):
                break  # perhaps the first half of a \r\n
            yield buffer[start : end.start()]
            start = end.end()
        buffer = buffer[start:]
    buffer += decoder.decode(b"", final=True)
    if buffer:
        parts = _EOL.split(buffer)
        if parts[-1] == "":
            parts.pop()
        yield from parts


def _ndjson(samples: Iterable[Mapping[str, Any]], sent: list[int]) -> Iterator[bytes]:
    """Samples as newline-delimited JSON in pieces of about 64 KiB; counts in ``sent[0]``."""
    piece = bytearray()
    for sample in samples:
        try:
            piece += json.dumps(dict(sample), allow_nan=False).encode() + b"\n"
        except (TypeError, ValueError) as exc:
            raise TypeError(f"Sample {sent[0] + 1} cannot be sent as JSON: {exc}") from exc
        sent[0] += 1
        if len(piece) >= _NDJSON_PIECE:
            yield bytes(piece)
            piece.clear()
    if piece:
        yield bytes(piece)
