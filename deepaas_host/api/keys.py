"""Typed application state: everything a handler needs lives under these keys."""

from __future__ import annotations

import asyncio

from aiohttp import web

from deepaas_host.jobs.pool import WorkerPool
from deepaas_host.jobs.training import TrainingService
from deepaas_host.model.discovery import LoadedPlugin
from deepaas_host.model.wrapper import ModelWrapper
from deepaas_host.online.service import OnlineService
from deepaas_host.registry.service import VersionService
from deepaas_host.settings import Settings

__all__ = [
    "LEARN_POOL",
    "MODELS",
    "ONLINE",
    "ONLINE_PLUGINS",
    "PREDICT_POOL",
    "REGISTRY",
    "SETTINGS",
    "STARTUP",
    "TRAINING",
    "UPLOAD_DIR",
]

SETTINGS = web.AppKey("settings", Settings)
MODELS = web.AppKey("models", dict[str, ModelWrapper])
PREDICT_POOL = web.AppKey("predict_pool", WorkerPool)
TRAINING = web.AppKey("training", TrainingService)
REGISTRY = web.AppKey("registry", VersionService)
STARTUP = web.AppKey("startup", asyncio.Task[None])
UPLOAD_DIR = web.AppKey("upload_dir", str)
ONLINE = web.AppKey("online", OnlineService)
ONLINE_PLUGINS = web.AppKey("online_plugins", list[LoadedPlugin])
#: The one worker that runs ``learn`` and ``predict`` of plugins that learn online.
LEARN_POOL = web.AppKey("learn_pool", WorkerPool)
