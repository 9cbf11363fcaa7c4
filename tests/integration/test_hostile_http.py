"""Hostile HTTP against each app served by uvicorn, as in production: bodies that never end."""

import select
import socket
import time
from urllib.parse import urlsplit

import httpx
import pytest

from gateway.edge import MAX_BODY_BYTES

pytestmark = pytest.mark.e2e


# Far beyond the limit and the sockets' buffers: a server that read it all would never answer.
ENDLESS = 64 * 1024 * 1024


def _a_call_with_a_body(url: str) -> tuple[str, str]:
    """(method, path) of the first operation of the app's OpenAPI document that takes a body."""
    for path, operations in httpx.get(f"{url}/openapi.json").json()["paths"].items():
        for method, operation in operations.items():
            if "requestBody" in operation and "{" not in path:
                return method.upper(), path
    raise AssertionError("no operation takes a body")


def _send_until_answered(url: str, head: str, body_chunk: bytes, most: int) -> tuple[bytes, int]:
    """Send `head`, then `body_chunk` over and over (up to `most` bytes) until the server
    answers; return the start of the answer and how many body bytes went out."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(head.encode())
        sock.setblocking(False)
        pending, sent, answer = b"", 0, b""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and b"\r\n\r\n" not in answer:
            if not pending and sent < most:
                pending = body_chunk
            readable, writable, _ = select.select([sock], [sock] if pending else [], [], 1)
            if readable:
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
            elif writable:
                try:
                    written = sock.send(pending)
                except (BrokenPipeError, ConnectionResetError):
                    pending = b""
                    continue
                pending, sent = pending[written:], sent + written
        return answer, sent


def test_a_declared_body_over_64_kib_is_413_before_any_of_it_is_sent(app_url: str) -> None:
    method, path = _a_call_with_a_body(app_url)
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        f"Content-Length: {10 * 1024**3}\r\n\r\n"
    )

    started = time.monotonic()
    answer, sent = _send_until_answered(app_url, head, b"", 0)

    print(f"413 for a declared 10 GiB body after {time.monotonic() - started:.3f} s")
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert sent == 0


def test_an_endless_chunked_body_is_413_once_it_passes_64_kib(app_url: str) -> None:
    method, path = _a_call_with_a_body(app_url)
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"[" + b" " * 8190 + b"\n"
    framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"

    answer, sent = _send_until_answered(app_url, head, framed, ENDLESS)

    print(f"413 after {sent} bytes of a chunked body (limit {MAX_BODY_BYTES})")
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert sent < ENDLESS
