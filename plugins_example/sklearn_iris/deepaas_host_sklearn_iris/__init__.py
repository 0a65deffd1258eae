"""scikit-learn iris classifier plugin for deepaas-host.

The model lives in :mod:`deepaas_host_sklearn_iris.model`; scikit-learn is only
imported when the model is warmed, used or trained.
"""

from __future__ import annotations

__version__ = "0.1.0"
