"""The plugin side: contract, discovery and the wrapper that adapts a plugin."""

from __future__ import annotations

from deepaas_host.model.v2 import BaseModel, File, InvalidInput, UploadedFile, report_progress

__all__ = ["BaseModel", "File", "InvalidInput", "UploadedFile", "report_progress"]
