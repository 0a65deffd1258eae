"""Python client of deepaas-host: models, versions, predictions, training and online
learning.

>>> from deepaas_host.client import create_client_from_profile
>>> client = create_client_from_profile("dev")                   # doctest: +SKIP
>>> client.predict("iris", sepal_length=5.1, sepal_width=3.5,
...                petal_length=1.4, petal_width=0.2)             # doctest: +SKIP
{'status': 'OK', 'predictions': [{'label': 'setosa', ...}]}
"""

from __future__ import annotations

from deepaas_host.client.auth import (
    BEARER,
    STANDALONE,
    BearerTokenAuth,
    StandAloneTokenAuth,
    TokenAuth,
)
from deepaas_host.client.client import Client, Document, PathOrFile, PredictionNotFound
from deepaas_host.client.downloader import Downloader, FileSystemDownloader
from deepaas_host.client.errors import (
    AuthenticationError,
    ChecksumMismatch,
    ClientError,
    HostError,
    HostUnreachable,
    JobNotFound,
    ModelAlreadyExists,
    ModelNotFound,
    ProfileError,
    TrainingTimeout,
    ValidationError,
    VersionNotFound,
)
from deepaas_host.client.factories import create_client_from_profile, create_client_from_token
from deepaas_host.client.profiles import PROFILE_FILE, Profile, load_profile

__all__ = [
    "BEARER",
    "PROFILE_FILE",
    "STANDALONE",
    "AuthenticationError",
    "BearerTokenAuth",
    "ChecksumMismatch",
    "Client",
    "ClientError",
    "Document",
    "Downloader",
    "FileSystemDownloader",
    "HostError",
    "HostUnreachable",
    "JobNotFound",
    "ModelAlreadyExists",
    "ModelNotFound",
    "PathOrFile",
    "PredictionNotFound",
    "Profile",
    "ProfileError",
    "StandAloneTokenAuth",
    "TokenAuth",
    "TrainingTimeout",
    "ValidationError",
    "VersionNotFound",
    "create_client_from_profile",
    "create_client_from_token",
    "load_profile",
]
