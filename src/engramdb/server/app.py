"""The FastAPI application: REST under `/v1`, MCP at `/mcp`, the web page at `/ui`, health, metrics.

`create_app` wires one shared store and one shared embedder into per-tenant `Memory` objects,
the job worker, the MCP server and the guards. Everything the app opens it closes at shutdown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi_offline import FastAPIOffline
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.responses import Response
from starlette.routing import Route
from starlette.staticfiles import StaticFiles

from engramdb import __version__
from engramdb.config import Config
from engramdb.errors import EngramError
from engramdb.jobs import STALE_AFTER_S
from engramdb.parts import Embedder, IngestConfig, Store, embedder_for, open_store
from engramdb.server.auth import Principal, authenticate
from engramdb.server.errors import error_response, install_handlers
from engramdb.server.guards import LOOPBACK_NAMES, BodyLimit, LoopbackHost
from engramdb.server.mcp import BearerGuard, build_mcp
from engramdb.server.metrics import CONTENT_TYPE, Metrics, MetricsMiddleware
from engramdb.server.routes import router
from engramdb.server.tenancy import Tenants
from engramdb.server.worker import JobWorker

__all__ = ["NO_AUTH_TENANT", "ServerSettings", "create_app", "is_loopback"]

NO_AUTH_TENANT = "default"
_UI = Path(__file__).parent / "ui"


def is_loopback(host: str) -> bool:
    """The host names this machine only (127.0.0.0/8, ::1, localhost)."""
    return host.lower() in LOOPBACK_NAMES or host.startswith("127.")


@dataclass(frozen=True)
class ServerSettings:
    """How the server behaves.

    Args:
        auth: require an API key; False serves every request as tenant "default" with admin
            scope, and answers only to loopback Host names.
        max_body_bytes: request bodies larger than this get 413.
        max_import_bytes: the limit for `POST /v1/import` (a JSONL export can be large).
        worker: run the background derivation worker in this process.
        worker_poll_s: how often the worker looks at an empty queue.
        job_stale_after_s: a running job not updated for this long is claimed again.
        host: the address the server binds to (the MCP transport's Host check uses it).
    """

    auth: bool = True
    max_body_bytes: int = 2 * 1024 * 1024
    max_import_bytes: int = 256 * 1024 * 1024
    worker: bool = True
    worker_poll_s: float = 0.5
    job_stale_after_s: float = STALE_AFTER_S
    host: str = "127.0.0.1"


@dataclass
class _State:
    """What routes reach through `app.state.engram` (see `routes.ServerState`)."""

    tenants: Tenants
    settings: ServerSettings
    worker: JobWorker
    metrics: Metrics
    mcp: MCPServer[Any]
    owns_store: bool

    def authenticate(self, header: str | None) -> Principal:
        if not self.settings.auth:
            return Principal(tenant_id=NO_AUTH_TENANT, scope="admin")
        return authenticate(self.tenants.store, header)

    def job_queued(self) -> None:
        self.worker.wake()


def create_app(
    store: Store | str = "engramdb.sqlite",
    *,
    embedder: Embedder | None = None,
    config: Config | None = None,
    ingest_config: IngestConfig | None = None,
    settings: ServerSettings | None = None,
) -> FastAPI:
    """The engramdb server as an ASGI app.

    Args:
        store: an open `Store` (the caller closes it) or a location for `open_store` (closed
            by the app at shutdown).
        embedder: shared by every tenant; default: the one the store's vectors were made with
            (`store_embedder`).
        config: retrieval settings for every tenant (its `tenant_id` is ignored).
        ingest_config: how every tenant's adds extract facts; default: `IngestConfig()`.
        settings: server behaviour.

    Raises:
        ModelMismatch: the store's vectors come from another embedding model.
    """
    settings = settings or ServerSettings()
    owns_store = isinstance(store, str)
    opened = open_store(store) if isinstance(store, str) else store
    try:
        model = embedder_for(opened, embedder)
        tenants = Tenants(opened, model, config, ingest_config)
        tenants.memory(NO_AUTH_TENANT)  # fail now, not on the first request, on a mismatch
    except EngramError:
        if owns_store:
            opened.close()
        raise
    mcp = build_mcp(tenants)
    # on loopback the SDK checks Host and Origin (DNS rebinding); elsewhere every request
    # needs a key anyway, and the Host is whatever name the server is reached by
    security = (
        None if is_loopback(settings.host) else TransportSecuritySettings(
            enable_dns_rebinding_protection=False
        )
    )  # fmt: skip
    mcp.streamable_http_app(
        stateless_http=True,  # every request carries (and is checked by) its own key
        json_response=True,
        max_request_body_size=settings.max_body_bytes,
        transport_security=security,
        host=settings.host,
    )
    state = _State(
        tenants=tenants,
        settings=settings,
        worker=JobWorker(
            tenants, poll_s=settings.worker_poll_s, stale_after_s=settings.job_stale_after_s
        ),
        metrics=Metrics(tenants),
        mcp=mcp,
        owns_store=owns_store,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with mcp.session_manager.run():
            if settings.worker:
                state.worker.start()
            try:
                yield
            finally:
                await anyio.to_thread.run_sync(state.worker.stop)
                if state.owns_store:
                    tenants.close()

    # /docs with Swagger UI's assets served from a package, so it works offline (ReDoc is left
    # out: its page fetches a logo from its CDN)
    app = FastAPIOffline(
        redoc_url=None,
        title="engramdb",
        version=__version__,
        description="Long-term memory for LLM agents: REST API. Authenticate with "
        "`Authorization: Bearer <key>` (create one with `engramdb keys create`).",
        lifespan=lifespan,
    )
    app.state.engram = state
    install_handlers(app)
    app.include_router(router)
    app.router.routes.append(Route("/mcp", BearerGuard(_McpEndpoint(mcp), state.authenticate)))
    app.mount("/ui", StaticFiles(directory=_UI, html=True), name="ui")
    _add_service_routes(app, state)
    app.add_middleware(
        BodyLimit,
        max_bytes=settings.max_body_bytes,
        per_path={"/v1/import": settings.max_import_bytes},
    )
    if not settings.auth:
        app.add_middleware(LoopbackHost)
    app.add_middleware(MetricsMiddleware, metrics=state.metrics)
    return app


class _McpEndpoint:
    """The MCP streamable HTTP transport as a plain ASGI endpoint."""

    def __init__(self, mcp: MCPServer[Any]) -> None:
        self.mcp = mcp

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.mcp.session_manager.handle_request(scope, receive, send)


def _add_service_routes(app: FastAPI, state: _State) -> None:
    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/ui/")

    @app.get("/healthz", tags=["service"])
    def healthz() -> dict[str, str]:
        """The process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["service"])
    def readyz(request: Request) -> Response:
        """The store answers and the job worker runs: ready for traffic."""
        problems: list[str] = []
        try:
            if state.tenants.store.get_meta("embedding_model") is None:
                problems.append("store has no embedding model recorded")
        except EngramError as exc:
            problems.append(f"store does not answer: {exc}")
        if state.settings.worker and not state.worker.alive:
            problems.append("job worker is not running")
        if problems:
            return error_response(503, "not_ready", "; ".join(problems))
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", tags=["service"], response_class=Response)
    def metrics() -> Response:
        """Prometheus text format: requests and latency per route, memories per tenant."""
        return Response(state.metrics.render(), media_type=CONTENT_TYPE)
