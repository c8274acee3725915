"""``/healthz`` and ``/metrics``: for the load balancer and the monitoring, never signed in.

/healthz answers 200 or 503 with JSON (bot.health); /metrics is prometheus-client's text
format: this process's counters and histograms (bot.metrics) followed by the store's gauges,
read at scrape time so that every worker sharing the database is counted.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from bot import metrics
from bot.health import check_health, collect_store_gauges, store_up

router = APIRouter()


def _runtime_view(request: Request) -> tuple[dict[str, Any], dict[str, str]]:
    """The sender's own last successes and its loops' failures, when it runs here."""
    runtime = getattr(request.app.state, "runtime", None)
    if runtime is None:
        return {}, {}
    return dict(runtime.worker.dispatcher.last_ok), dict(runtime.health.errors)


@router.get("/healthz")
async def healthz(request: Request) -> Response:
    state = request.app.state
    last_ok, errors = _runtime_view(request)
    platforms = [f.adapter.platform for f in state.frontends]
    report = await run_in_threadpool(
        check_health,
        state.engine,
        now=state.clock.now(),
        platforms=platforms,
        last_ok=last_ok,
        process_errors=errors,
    )
    return JSONResponse(report.body, status_code=200 if report.ok else 503)


@router.get("/metrics")
async def prometheus(request: Request) -> Response:
    state = request.app.state
    own = generate_latest(metrics.REGISTRY)
    try:
        gauges = await run_in_threadpool(collect_store_gauges, state.engine, state.clock.now())
        store = generate_latest(gauges) + generate_latest(store_up(True))
    except Exception:  # the store is down: the process metrics still say something
        store = generate_latest(store_up(False))
    return Response(own + store, media_type=CONTENT_TYPE_LATEST)
