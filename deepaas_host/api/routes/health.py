"""``GET /v2/health``: live always, ready once every worker is warmed.

A damaged online model does not make the host unready (one model must not take
it out of a load balancer): the answer stays 200 and ready, with status
``degraded`` and the refused models listed under ``damaged``.
"""

from __future__ import annotations

import dataclasses

from aiohttp import web

from deepaas_host.api.keys import LEARN_POOL, ONLINE, PREDICT_POOL, STARTUP, TRAINING

__all__ = ["health", "is_ready"]


def is_ready(app: web.Application) -> bool:
    startup = app.get(STARTUP)
    if startup is None or not startup.done() or startup.cancelled() or startup.exception():
        return False
    pools = [app[PREDICT_POOL]] if PREDICT_POOL in app else []
    if TRAINING in app:
        pools.append(app[TRAINING].pool)
    if LEARN_POOL in app:
        pools.append(app[LEARN_POOL])
    if ONLINE in app:
        pools.extend(app[ONLINE].pools)
    return all(p.ready for p in pools)


async def health(request: web.Request) -> web.Response:
    app = request.app
    pools = {}
    if PREDICT_POOL in app:
        pools["predict"] = dataclasses.asdict(app[PREDICT_POOL].stats())
    if TRAINING in app:
        pools["train"] = dataclasses.asdict(app[TRAINING].pool.stats())
    if LEARN_POOL in app:
        pools["learn"] = dataclasses.asdict(app[LEARN_POOL].stats())
    if ONLINE in app:
        for pool in app[ONLINE].pools:
            pools[pool.name] = dataclasses.asdict(pool.stats())
    startup = app.get(STARTUP)
    error = None
    if startup is not None and startup.done() and not startup.cancelled() and startup.exception():
        error = str(startup.exception())
    ready = is_ready(app)
    damaged = app[ONLINE].damaged_models() if ONLINE in app else []
    if ready:
        status = "degraded" if damaged else "ok"
    else:
        status = "degraded" if error or (startup and startup.done()) else "starting"
    body = {
        "status": status,
        "live": True,
        "ready": ready,
        "pools": pools,
        "error": error,
        "damaged": damaged,
    }
    return web.json_response(body, status=200 if ready else 503)
