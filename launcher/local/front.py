"""The dev front of `make run`: the whole API at one address (http://127.0.0.1:8000), as the
Ingress gives it in a cluster. Dev tooling only, never in the image.

`/events…` goes to the line provider and `/bets…` to the bet maker. Bodies stream both ways,
so an answer that never ends (Server-Sent Events) reaches the client as it is written.
`/openapi.json` merges the two servers' documents and `/docs` shows it; `/healthz` says the
front is up and `/readyz` that both servers are ready.
"""

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractContextManager as ContextManager
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

# Headers about one connection, not the message (RFC 9110, 7.6.1): never passed on.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
    }
)


@dataclass(frozen=True)
class Upstream:
    """A server behind the front: it answers every path under `prefix`."""

    name: str
    url: str
    prefix: str

    def serves(self, path: str) -> bool:
        return path == self.prefix or path.startswith(self.prefix + "/")


def upstreams(line_provider: str, bet_maker: str) -> tuple[Upstream, Upstream]:
    """Where each path prefix goes: the Ingress's rules, for one machine."""
    return (
        Upstream("line provider", line_provider, "/events"),
        Upstream("bet maker", bet_maker, "/bets"),
    )


class MergeConflict(Exception):
    """Two documents define one component differently."""


def merge_openapi(documents: list[tuple[Upstream, dict[str, Any]]]) -> dict[str, Any]:
    """One OpenAPI document of the calls the front routes: each upstream's own paths (its
    operations endpoints stay its own) and every component they refer to."""
    paths: dict[str, Any] = {}
    components: dict[str, dict[str, Any]] = {}
    for upstream, document in documents:
        paths |= {p: ops for p, ops in document["paths"].items() if upstream.serves(p)}
        for section, entries in document.get("components", {}).items():
            merged = components.setdefault(section, {})
            for name, entry in entries.items():
                if merged.setdefault(name, entry) != entry:
                    raise MergeConflict(f"components.{section}.{name} differs between servers")
    return {
        "openapi": documents[0][1]["openapi"],
        "info": {
            "title": "Betting platform (make run)",
            "version": documents[0][1]["info"]["version"],
            "description": "The line provider's and the bet maker's calls behind one address. "
            + " ".join(f"{u.name}: {u.url}/docs." for u, _ in documents),
        },
        "paths": paths,
        "components": components,
    }


def create_front(line_provider: str, bet_maker: str) -> Starlette:
    """The front's ASGI app, routing to the servers at these base URLs."""
    routes = upstreams(line_provider, bet_maker)
    # No read timeout: a stream may stay quiet for a while and still be alive.
    client = httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=None))

    async def proxy(request: Request) -> Response:
        upstream = next((u for u in routes if u.serves(request.url.path)), None)
        if upstream is None:
            return JSONResponse({"detail": "Not Found"}, status_code=404)
        # The path as the client wrote it: decoding %2F would change which resource it names.
        target = upstream.url + request.scope["raw_path"].decode("latin-1")
        if request.url.query:
            target += "?" + request.url.query
        has_body = "content-length" in request.headers or "transfer-encoding" in request.headers
        outgoing = client.build_request(
            request.method,
            target,
            headers=[(k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP],
            content=request.stream() if has_body else None,
        )
        try:
            answer = await client.send(outgoing, stream=True)
        except httpx.TransportError:
            return JSONResponse({"detail": f"the {upstream.name} is unavailable"}, 502)
        # The raw bytes, still encoded as the server sent them, chunk by chunk as they come.
        response = StreamingResponse(
            answer.aiter_raw(),
            status_code=answer.status_code,
            background=BackgroundTask(answer.aclose),
        )
        # Every header line as sent: a repeated one (Set-Cookie) stays repeated.
        response.raw_headers = [
            (k.encode("latin-1"), v.encode("latin-1"))
            for k, v in answer.headers.multi_items()
            if k.lower() not in HOP_BY_HOP
        ]
        return response

    async def openapi(_: Request) -> Response:
        try:
            answers = await asyncio.gather(*(client.get(f"{u.url}/openapi.json") for u in routes))
        except httpx.TransportError as exc:
            return JSONResponse({"detail": f"a server is unavailable: {exc}"}, 502)
        return JSONResponse(
            merge_openapi([(u, a.json()) for u, a in zip(routes, answers, strict=True)])
        )

    async def docs(_: Request) -> Response:
        page: HTMLResponse = get_swagger_ui_html(
            openapi_url="/openapi.json", title="Betting platform (make run)"
        )
        return page

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        async def ready(upstream: Upstream) -> bool:
            try:
                return (await client.get(f"{upstream.url}/readyz")).status_code == 200
            except httpx.TransportError:
                return False

        results = await asyncio.gather(*(ready(u) for u in routes))
        unready = [u.name for u, ok in zip(routes, results, strict=True) if not ok]
        if unready:
            return JSONResponse({"detail": f"unavailable: {', '.join(unready)}"}, 503)
        return JSONResponse({"status": "ok"})

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        await client.aclose()

    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    return Starlette(
        lifespan=lifespan,
        routes=[
            Route("/openapi.json", openapi),
            Route("/docs", docs),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/{path:path}", proxy, methods=methods),
        ],
    )


@contextmanager
def serving(app: Starlette, port: int, timeout_s: float = 10.0) -> Iterator[str]:
    """Serve `app` on 127.0.0.1:`port` from a thread of this process; yield its URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name=f"serving-{port}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + timeout_s
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError(f"could not listen on port {port}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"did not start on port {port} within {timeout_s} s")
            thread.join(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout_s)


def running_front(port: int, line_provider: str, bet_maker: str) -> ContextManager[str]:
    """The dev front on 127.0.0.1:`port`, in a thread of `betting dev`'s own process."""
    return serving(create_front(line_provider, bet_maker), port)
