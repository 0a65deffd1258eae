"""deepaas-host: serve pip-installed model packages as documented REST APIs."""

from __future__ import annotations

import logging

from deepaas_host.model.v2 import BaseModel, File, UploadedFile, report_progress

__all__ = ["BaseModel", "File", "UploadedFile", "__version__", "report_progress"]

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())
