"""The dev front of `make run`, between a client and two stand-in servers: it routes by prefix,
passes requests and answers on unchanged, streams an answer as it is written (so a
Server-Sent Events stream works through it), and says which server is missing."""

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from launcher.local import free_port
from launcher.local.front import running_front, serving


class StandIn:
    """A server that echoes what reached it, and streams one event, then a second once told."""

    def __init__(self, name: str, prefix: str) -> None:
        self.name = name
        self.prefix = prefix
        self.release = threading.Event()

    async def echo(self, request: Request) -> Response:
        response = JSONResponse(
            {
                "server": self.name,
                "method": request.method,
                "raw_path": request.scope["raw_path"].decode(),
                "query": request.url.query,
                "authorization": request.headers.get("authorization"),
                "body": (await request.body()).decode(),
            },
            status_code=201 if request.method == "POST" else 200,
            headers={"Location": f"{self.prefix}/1", "X-Upstream": self.name},
        )
        response.raw_headers += [(b"set-cookie", b"a=1"), (b"set-cookie", b"b=2")]
        return response

    async def stream(self, _: Request) -> Response:
        async def events() -> AsyncIterator[bytes]:
            yield b"event: bet\ndata: 1\n\n"
            # The second comes only once the client has read the first (or after 10 s).
            await asyncio.to_thread(self.release.wait, 10)
            yield b"event: bet\ndata: 2\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    async def ready(self, _: Request) -> Response:
        return JSONResponse({"status": "ok"})

    def app(self) -> Starlette:
        methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
        return Starlette(
            routes=[
                Route(f"{self.prefix}/stream", self.stream),
                Route("/readyz", self.ready),
                Route(self.prefix + "{rest:path}", self.echo, methods=methods),
            ]
        )


@dataclass
class Front:
    url: str
    line_provider: StandIn
    bet_maker: StandIn


@pytest.fixture(scope="module")
def front() -> Iterator[Front]:
    line_provider, bet_maker = StandIn("line provider", "/events"), StandIn("bet maker", "/bets")
    with (
        serving(line_provider.app(), free_port()) as lp,
        serving(bet_maker.app(), free_port()) as bm,
        running_front(free_port(), lp, bm) as url,
    ):
        yield Front(url, line_provider, bet_maker)


@pytest.mark.parametrize(
    ("method", "path", "server"),
    [
        ("GET", "/events", "line provider"),
        ("PATCH", "/events/42", "line provider"),
        ("POST", "/bets", "bet maker"),
        ("DELETE", "/bets/7", "bet maker"),
    ],
)
def test_each_call_reaches_the_server_of_its_prefix_unchanged(
    front: Front, method: str, path: str, server: str
) -> None:
    response = httpx.request(
        method,
        f"{front.url}{path}?open=true&limit=5",
        headers={"Authorization": "Bearer t0ken"},
        content=b'{"amount": "10.00"}' if method in {"POST", "PATCH"} else None,
    )

    assert response.status_code == (201 if method == "POST" else 200)
    assert response.headers["x-upstream"] == server
    assert response.headers["location"].startswith(path.rsplit("/", 1)[0] or path)
    assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]
    assert response.json() == {
        "server": server,
        "method": method,
        "raw_path": path,
        "query": "open=true&limit=5",
        "authorization": "Bearer t0ken",
        "body": '{"amount": "10.00"}' if method in {"POST", "PATCH"} else "",
    }


def test_the_path_reaches_the_server_as_the_client_wrote_it(front: Front) -> None:
    response = httpx.get(f"{front.url}/events/a%2Fb")

    assert response.json()["raw_path"] == "/events/a%2Fb"


@pytest.mark.parametrize("path", ["/", "/eventsx", "/betsy", "/metrics", "/nothing/events"])
def test_paths_of_neither_server_are_404(front: Front, path: str) -> None:
    response = httpx.get(f"{front.url}{path}")

    assert (response.status_code, response.json()) == (404, {"detail": "Not Found"})


def test_a_stream_reaches_the_client_as_it_is_written(front: Front) -> None:
    with httpx.stream("GET", f"{front.url}/bets/stream", timeout=10) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        chunks = response.iter_raw()
        # The server holds its second event until we have the first: a front that buffered
        # the whole answer would time out here.
        first = next(chunks)
        front.bet_maker.release.set()
        rest = b"".join(chunks)

    assert first == b"event: bet\ndata: 1\n\n"
    assert rest == b"event: bet\ndata: 2\n\n"


def test_the_front_is_ready_when_both_servers_are(front: Front) -> None:
    assert httpx.get(f"{front.url}/healthz").json() == {"status": "ok"}
    response = httpx.get(f"{front.url}/readyz")

    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_a_missing_server_is_named() -> None:
    line_provider = StandIn("line provider", "/events")
    nowhere = f"http://127.0.0.1:{free_port()}"
    with (
        serving(line_provider.app(), free_port()) as lp,
        running_front(free_port(), lp, nowhere) as url,
    ):
        bet = httpx.post(f"{url}/bets", json={})
        ready = httpx.get(f"{url}/readyz")
        events = httpx.get(f"{url}/events")

    assert (bet.status_code, bet.json()) == (502, {"detail": "the bet maker is unavailable"})
    assert (ready.status_code, ready.json()) == (503, {"detail": "unavailable: bet maker"})
    assert events.status_code == 200
