"""Build the FastAPI application; nothing is created at import time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import SQLAlchemyError

from api.body_limit import BodyLimit, Limit
from api.errors import install_error_handlers
from api.metrics import FOLLOWED, WORKER_THREADS, RequestMetrics, worker_stopped
from api.model_files import ModelFile
from api.model_swaps import ServiceState
from api.openapi_errors import document_errors
from api.routes import (
    explorer,
    health,
    items,
    models,
    ratings,
    recommendations,
    tabular,
    users,
    vision,
)
from recsys.db.engine import make_engine, make_probe_engine
from recsys.settings import Settings, get_settings
from recsys.tabular.tabular_learner import load_tabular
from recsys.thread_limits import limit_threads
from recsys.vision.vision_learner import load_vision

STATIC = Path(__file__).resolve().parent / "static"
# Swagger UI and ReDoc served by the app itself: FastAPI's defaults load them from a
# CDN, and /docs is a blank page on a machine without internet access.
DOCS_ASSETS = Path(fastapi_offline.__file__).resolve().parent / "static"
UPLOAD_OVERHEAD = 64 * 1024


async def _follow_registry(app: FastAPI, every_seconds: float) -> None:
    """Poll the registry; load a newly activated version off the event loop, then swap.

    Each worker polls on its own, so with several workers each one swaps itself.
    """
    while True:
        await asyncio.sleep(every_seconds)
        with contextlib.suppress(SQLAlchemyError):  # a database hiccup: try next time
            await run_in_threadpool(app.state.service.follow_registry, app.state.engine)


async def _follow_ratings(app: FastAPI, every_seconds: float) -> None:
    """Poll for ratings written elsewhere (other workers, replicas, `recsys ingest`) and
    fold them into the served models' seen items, and for items hidden or shown: every
    worker is current within ``every_seconds`` plus the time of two small queries."""
    while True:
        await asyncio.sleep(every_seconds)
        with contextlib.suppress(SQLAlchemyError):  # a database hiccup: try next time
            FOLLOWED.inc(await run_in_threadpool(app.state.service.follow_writes, app.state.engine))
            await run_in_threadpool(app.state.service.follow_hidden, app.state.engine)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The service for ``settings`` (the environment's when omitted)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # A few threads per worker for every BLAS/OpenMP pool (see recsys.thread_limits).
        for pool, n_threads in limit_threads(settings.api_torch_threads).items():
            WORKER_THREADS.labels(pool).set(n_threads)
        app.state.settings = settings
        app.state.engine = make_engine(settings.database_url)
        # /ready's own connection and thread: requests waiting on a long write must not
        # make a replica look dead.
        app.state.probe_engine = make_probe_engine(settings.database_url)
        app.state.probe_thread = ThreadPoolExecutor(1, thread_name_prefix="ready")
        app.state.service = ServiceState(settings.recommend_with)
        app.state.tabular = ModelFile(
            settings.tabular_model_path, load_tabular, "tabular model", "recsys tabular train"
        )
        app.state.vision = ModelFile(
            settings.vision_model_path, load_vision, "vision model", "recsys vision train"
        )
        # Load once at start; scoring never touches the database afterwards. With the
        # database unreachable the service still starts, and /ready says why it is not.
        with contextlib.suppress(SQLAlchemyError):
            app.state.service.load_active(app.state.engine)
        watchers = []
        if settings.model_poll_seconds > 0:
            watchers.append(asyncio.create_task(_follow_registry(app, settings.model_poll_seconds)))
        if settings.ratings_poll_seconds > 0:
            watchers.append(
                asyncio.create_task(_follow_ratings(app, settings.ratings_poll_seconds))
            )
        try:
            yield
        finally:
            for watcher in watchers:
                watcher.cancel()
            app.state.engine.dispose()
            app.state.probe_engine.dispose()
            app.state.probe_thread.shutdown(wait=False)
            worker_stopped()

    app = FastAPI(
        title="recsys",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        description="Recommendations, rating predictions and similar items in your own ids; "
        "tabular and image predictions.",
    )
    install_error_handlers(app)
    app.add_middleware(
        BodyLimit,
        default=Limit(settings.max_body_bytes),
        paths={
            "/vision/predict": Limit(
                settings.vision_max_upload_bytes,
                UPLOAD_OVERHEAD,  # multipart boundaries and part headers
                "upload_too_large",
                "upload",
            )
        },
    )
    app.add_middleware(RequestMetrics)  # outermost: it sees every answer, 413s included
    for module in (
        health,
        recommendations,
        items,
        explorer,
        ratings,
        models,
        tabular,
        users,
        vision,
    ):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _serve_docs(app)
    document_errors(app)
    return app


def _serve_docs(app: FastAPI) -> None:
    """/docs (Swagger UI) and /redoc from files in the installed package, no CDN."""
    app.mount("/docs-assets", StaticFiles(directory=DOCS_ASSETS), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{app.title} - Swagger UI",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title=f"{app.title} - ReDoc",
            redoc_js_url="/docs-assets/redoc.standalone.js",
            redoc_favicon_url="/docs-assets/favicon.png",
            with_google_fonts=False,
        )
