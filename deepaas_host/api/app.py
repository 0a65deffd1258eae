"""``create_app``: discovery, routes, spec and the life cycle of pools and store."""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import AsyncIterator, Callable, Sequence

from aiohttp import web

from deepaas_host.api import keys
from deepaas_host.api.auth import auth_context, auth_middleware
from deepaas_host.api.hostnames import HOST_NAMES, HostNames
from deepaas_host.api.middleware import error_middleware, request_log_middleware
from deepaas_host.api.openapi import build_openapi
from deepaas_host.api.routes import docs, health, meta
from deepaas_host.api.routes.online import online_routes
from deepaas_host.api.routes.predict import learn_handler, predict_handler
from deepaas_host.api.routes.train import train_handlers
from deepaas_host.api.routes.versions import version_routes
from deepaas_host.errors import HostError, ModelNotFound
from deepaas_host.jobs.pool import WorkerPool
from deepaas_host.jobs.training import TrainingService
from deepaas_host.model.discovery import LoadedPlugin, load_plugins
from deepaas_host.model.online import OnlineModel
from deepaas_host.model.wrapper import ModelWrapper
from deepaas_host.online.service import OnlineService
from deepaas_host.registry.artifacts import ArtifactStore
from deepaas_host.registry.service import VersionService
from deepaas_host.settings import Settings
from deepaas_host.store import JobStore, create_schema, open_engine
from deepaas_host.store.lock import DataDirLock
from deepaas_host.store.versions import VersionStore

__all__ = ["create_app", "load_all", "load_models"]

log = logging.getLogger(__name__)


def load_models(
    settings: Settings, plugins: Sequence[LoadedPlugin] | None = None
) -> dict[str, ModelWrapper]:
    """Discover and load the selected plugins (raises PluginLoadError unless skipping)."""
    return load_all(settings, plugins)[0]


def load_all(
    settings: Settings, plugins: Sequence[LoadedPlugin] | None = None
) -> tuple[dict[str, ModelWrapper], list[LoadedPlugin]]:
    """The selected plugins: served models, and online-learning plugins apart."""
    failures: list[HostError] = []
    if plugins is None:
        loaded, load_failures = load_plugins(
            settings.models or None, skip_broken=settings.skip_broken
        )
        failures.extend(load_failures)
    else:
        loaded = list(plugins)
    models: dict[str, ModelWrapper] = {}
    online = [p for p in loaded if isinstance(p.model, OnlineModel)]
    for plugin in loaded:
        if isinstance(plugin.model, OnlineModel):
            continue
        try:
            models[plugin.info.name] = ModelWrapper.from_plugin(plugin)
        except HostError as exc:
            if not settings.skip_broken:
                raise
            log.error("skipping broken plugin: %s", exc.message)
            failures.append(exc)
    if failures and not models and not online:
        # --skip-broken serves the rest; with no rest there is nothing to serve.
        raise failures[0]
    return models, online


async def _unknown_model(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in request.app[keys.MODELS]:
        raise ModelNotFound(name)
    # This catch-all hides aiohttp's own 405 for a model route asked with another
    # method (GET …/predict/), so find the methods the path does allow.
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        match, methods = await resource.resolve(request)
        if match is None:
            allowed |= methods
    if allowed:
        raise web.HTTPMethodNotAllowed(request.method, allowed)
    raise web.HTTPNotFound()


def _add_model_routes(
    app: web.Application, settings: Settings, models: dict[str, ModelWrapper]
) -> None:
    p = settings.base_path
    for model in models.values():
        base = f"{p}/v2/models/{model.name}"
        if settings.predict:
            app.router.add_post(f"{base}/predict/", predict_handler(model))
            if model.can_learn:
                app.router.add_post(f"{base}/learn/", learn_handler(model))
        if settings.train and model.train_args is not None:
            handlers = train_handlers(model)
            app.router.add_post(f"{base}/train/", handlers["start"])
            app.router.add_get(f"{base}/train/", handlers["list"], allow_head=False)
            app.router.add_get(f"{base}/train/{{job_id}}", handlers["get"], allow_head=False)
            app.router.add_delete(f"{base}/train/{{job_id}}", handlers["cancel"])
    app.add_routes(version_routes(p, models.values()))
    app.add_routes(online_routes(p))
    app.router.add_route("*", f"{p}/v2/models/{{name}}/{{rest:.*}}", _unknown_model)


def _data_dir_context(
    given: DataDirLock | None,
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def hold(app: web.Application) -> AsyncIterator[None]:
        if given is not None:
            yield
            return
        # A mkdir, an open and a non-blocking flock: nothing to take off the loop.
        with DataDirLock.acquire(app[keys.SETTINGS].data_dir):
            yield

    return hold


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    settings = app[keys.SETTINGS]
    models = app[keys.MODELS]
    plugins = [m.info for m in models.values()]
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upload_dir = settings.data_dir / "uploads"
    shutil.rmtree(upload_dir, ignore_errors=True)  # leftovers of a killed host
    upload_dir.mkdir(parents=True, exist_ok=True)
    app[keys.UPLOAD_DIR] = str(upload_dir)

    engine = None
    pools: list[WorkerPool] = []
    training: TrainingService | None = None
    trainable = [m.info for m in models.values() if m.can_train]
    predict_pool = None
    if settings.predict and plugins:
        predict_pool = WorkerPool(
            plugins,
            name="predict",
            size=settings.workers,
            max_queue=settings.queue_size,
            warm=settings.warm,
            max_loaded=settings.max_loaded_versions,
        )
        app[keys.PREDICT_POOL] = predict_pool
        pools.append(predict_pool)
        learners = [m.info for m in models.values() if m.can_learn]
        if learners:
            # One worker: learns apply in order to one state that predictions see.
            learn_pool = WorkerPool(
                learners, name="learn", size=1, max_queue=settings.queue_size, warm=settings.warm
            )
            app[keys.LEARN_POOL] = learn_pool
            pools.append(learn_pool)
    try:
        engine = await open_engine(settings.db_url)
        await create_schema(engine)
        registry = VersionService(
            VersionStore(engine),
            ArtifactStore.at(
                settings.artifact_url or settings.data_dir / "artifacts",
                cache_dir=settings.data_dir / "artifact-cache",
            ),
            models,
            predict_pool,
            history_limit=settings.version_history_limit,
        )
        app[keys.REGISTRY] = registry
        if settings.train and trainable:
            store = JobStore(engine, history_limit=settings.history_limit)
            train_pool = WorkerPool(
                trainable,
                name="train",
                size=settings.train_workers,
                depth=1,
                max_queue=None,
                warm=settings.warm,
            )
            pools.append(train_pool)
            training = TrainingService(store, train_pool, settings.data_dir / "jobs", registry)
            app[keys.TRAINING] = training
        online_plugins: list[LoadedPlugin] = app[keys.ONLINE_PLUGINS]
        online = OnlineService(settings, online_plugins)
        app[keys.ONLINE] = online
        startup = asyncio.create_task(_start(pools, training, {m.name for m in trainable}, online))
        app[keys.STARTUP] = startup
        yield
    finally:
        startup_task = app.get(keys.STARTUP)
        if startup_task is not None and not startup_task.done():
            startup_task.cancel()
        if keys.PREDICT_POOL in app:
            await app[keys.PREDICT_POOL].close(grace=settings.shutdown_timeout)
        if keys.LEARN_POOL in app:
            await app[keys.LEARN_POOL].close(grace=settings.shutdown_timeout)
        if training is not None:
            await training.close()
            await training.pool.close(grace=0)
        if keys.ONLINE in app:
            await app[keys.ONLINE].close(grace=settings.shutdown_timeout)
        if engine is not None:
            await engine.dispose()
        shutil.rmtree(upload_dir, ignore_errors=True)


async def _start(
    pools: list[WorkerPool],
    training: TrainingService | None,
    trainable: set[str],
    online: OnlineService,
) -> None:
    loop = asyncio.get_running_loop()
    began = loop.time()
    if training is not None:
        await training.recover(trainable)
    await asyncio.gather(*(p.start() for p in pools), online.start())
    pools = [*pools, *online.pools]
    log.info(
        "ready in %.2fs: %s",
        loop.time() - began,
        ", ".join(f"{p.name} x{p.size}" for p in pools) or "no workers",
    )


def create_app(
    settings: Settings | None = None,
    *,
    plugins: Sequence[LoadedPlugin] | None = None,
    data_lock: DataDirLock | None = None,
) -> web.Application:
    """Build the application: load plugins, generate routes and the spec.

    Workers are started (and warmed) when the app starts; ``GET /v2/health``
    turns ready once they are. ``plugins`` bypasses discovery (tests, embedding).
    Starting takes the lock of the data directory first (``DataDirectoryInUse`` if
    another host has it) unless ``data_lock``, a lock the caller holds on that
    directory, is given.
    """
    settings = settings or Settings.load()
    if data_lock is not None and (
        not data_lock.held or data_lock.directory != settings.data_dir.absolute()
    ):
        raise ValueError(f"data_lock is not a held lock of {settings.data_dir}")
    host_names = HostNames.for_settings(settings)  # before plugins: a bad name fails fast
    models, online = load_all(settings, plugins)
    # Outermost first: every answer is logged and rendered as JSON; the auth middleware
    # refuses a request naming another host (DNS rebinding) or sent by a browser for
    # another site before it even looks at tokens.
    app = web.Application(
        middlewares=[
            request_log_middleware,
            error_middleware,
            auth_middleware,
        ],
        client_max_size=settings.max_body_size,
    )
    app[keys.SETTINGS] = settings
    app[HOST_NAMES] = host_names
    app[keys.MODELS] = models
    app[keys.ONLINE_PLUGINS] = list(online)
    p = settings.base_path
    app.add_routes(meta.routes(p))
    app.router.add_get(f"{p}/v2/health", health.health, allow_head=False)
    if settings.docs:
        app[docs.SPEC] = build_openapi(settings, models.values(), online=online)
        app.add_routes(docs.routes(p))
    _add_model_routes(app, settings, models)
    # Before anything opens a file in the data directory.
    app.cleanup_ctx.append(_data_dir_context(data_lock))
    app.cleanup_ctx.append(auth_context)  # refuse to start before workers do
    app.cleanup_ctx.append(_lifecycle)
    app.on_shutdown.append(_stop_streams)
    return app


async def _stop_streams(app: web.Application) -> None:
    """End event streams first: they would hold a graceful shutdown open."""
    if keys.ONLINE in app:
        app[keys.ONLINE].stopping.set()
