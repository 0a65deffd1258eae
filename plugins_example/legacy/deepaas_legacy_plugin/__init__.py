"""A model package written the way DEEPaaS V2's documentation shows.

Three entry points in the ``deepaas.v2.model`` namespace: a module
(:mod:`deepaas_legacy_plugin.api`), a class and an instance
(:mod:`deepaas_legacy_plugin.klass`). Nothing here imports deepaas-host.
"""

from __future__ import annotations

import os

__version__ = "0.1.0"

BASE_DIR = os.path.dirname(os.path.abspath(__file__))
#: A small PNG returned for ``accept=image/png``.
PNG_PATH = os.path.join(BASE_DIR, "data", "example.png")
#: A small zip (``predictions.json`` + ``example.png``) for ``accept=application/zip``.
ZIP_PATH = os.path.join(BASE_DIR, "data", "example.zip")
