"""What every app of the gateway does at the HTTP edge, whatever its routes.

Routers that take a JSON body use `ExactJSONRoute`, so a number in a body is read exactly as
written (`betting.exact_json`) rather than through a binary float.
"""

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from betting import exact_json


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
