"""The HTTP side: ``create_app`` builds an aiohttp application serving the models."""

from __future__ import annotations

from deepaas_host.api.app import create_app, load_models

__all__ = ["create_app", "load_models"]
