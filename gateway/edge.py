"""What every app of the gateway does at the HTTP edge, whatever its routes.

`install(app)` puts it on an app: request bodies over `MAX_BODY_BYTES` answer 413, and an
unsupported method answers 405 with every method of the path in `Allow`; the OpenAPI document
says both (413 on each operation with a body, the rest in its description). Routers that take a
JSON body use `ExactJSONRoute`, so a number in a body is read exactly as written
(`betting.exact_json`) rather than through a binary float; a body that is not JSON is FastAPI's
`json_invalid` 422. Errors keep FastAPI's `{"detail": ...}` shape.
"""

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import FastAPI, HTTPException, Request, Response, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from betting import exact_json

MAX_BODY_BYTES = 64 * 1024
TOO_LARGE = f"the request body is larger than {MAX_BODY_BYTES} bytes"


class ExactJSONRequest(Request):
    """A request whose JSON body keeps every digit of its numbers."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = exact_json.loads(await self.body())
        return self._json


class ExactJSONRoute(APIRoute):
    """A route that decodes its body with `ExactJSONRequest` (FastAPI's custom-route hook)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handle_exactly(request: Request) -> Response:
            return await handle(ExactJSONRequest(request.scope, request.receive))

        return handle_exactly


class BodyLimitMiddleware:
    """Refuses a body over `max_bytes` with 413 when a route reads it, never holding more.

    A declared `Content-Length` over the limit is refused before a byte is read; a chunked
    body is counted as it streams in. The check runs in `receive`, so only a route that reads
    its body can answer 413: the operations the OpenAPI document lists it on.
    """

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        received = 0

        async def receive_within_limit() -> Message:
            nonlocal received
            if declared.isdigit() and int(declared) > self.max_bytes:
                raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, TOO_LARGE)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, TOO_LARGE)
            return message

        await self.app(scope, receive_within_limit, send)


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """Every method some route of `app` answers at `path`."""
    methods: set[str] = set()
    for route in iter_route_contexts(app.routes):
        if route.path is not None and route.methods:
            regex, _, _ = compile_path(route.path)
            if regex.match(path):
                methods |= route.methods
    return sorted(methods)


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    if exc.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
        # Starlette names only the first route that matched the path; RFC 9110 wants them all.
        allow = ", ".join(allowed_methods(request.app, request.url.path))
        return JSONResponse({"detail": exc.detail}, exc.status_code, headers={"Allow": allow})
    return await http_exception_handler(request, exc)


_TOO_LARGE_RESPONSE = {
    "description": f"The body is larger than {MAX_BODY_BYTES} bytes (64 KiB).",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {"detail": {"type": "string"}},
                "required": ["detail"],
            }
        }
    },
}


EDGE_RULES = (
    f"A request body is at most {MAX_BODY_BYTES} bytes (413 beyond) and must be JSON (422 if it is "
    "not). A method a path does not list answers 405, with every method it does list in `Allow`."
)


def _document_edge(openapi: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    def with_edge_rules() -> dict[str, Any]:
        document = openapi()
        info = document.setdefault("info", {})
        if EDGE_RULES not in info.get("description", ""):
            info["description"] = f"{info.get('description', '')}\n\n{EDGE_RULES}".strip()
        for operations in document.get("paths", {}).values():
            for operation in operations.values():
                if "requestBody" in operation:
                    operation["responses"].setdefault("413", _TOO_LARGE_RESPONSE)
        return document

    return with_edge_rules


def install(app: FastAPI) -> None:
    """Give `app` the gateway's HTTP-wide behaviour (see the module's docstring)."""
    app.add_middleware(BodyLimitMiddleware)
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.openapi = _document_edge(app.openapi)  # type: ignore[method-assign]
