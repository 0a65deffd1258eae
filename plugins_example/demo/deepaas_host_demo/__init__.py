"""Demo model plugin for deepaas-host.

The model itself lives in :mod:`deepaas_host_demo.model`; this module stays
import-light so the host can list the plugin cheaply.
"""

from __future__ import annotations

__version__ = "0.1.0"
