"""Model versions: artifact files, and the service that records, loads and serves them.

Import ``deepaas_host.registry.service`` for the service; this package itself stays
light because worker processes import the artifact helpers.
"""

from __future__ import annotations

from deepaas_host.registry.artifacts import (
    ArtifactStore,
    FsspecArtifactStore,
    LocalArtifactStore,
    StoredArtifact,
    sha256_of,
)

__all__ = [
    "ArtifactStore",
    "FsspecArtifactStore",
    "LocalArtifactStore",
    "StoredArtifact",
    "sha256_of",
]
