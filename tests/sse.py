"""A test's client of the bet stream: Server-Sent Events parsed as they arrive, on a thread,
so a test can wait for them with a deadline whatever transport carries them."""

import json
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

WAIT_S = 30.0
END = "(the server ended the stream)"


@dataclass(frozen=True)
class Sse:
    """One Server-Sent Event as a client reads it."""

    event: str
    id: str
    data: dict[str, Any]


class Stream:
    """A client of the stream: what it received, read on a thread so a test can wait."""

    def __init__(self, lines: Iterator[str], wait_s: float = WAIT_S) -> None:
        self._wait_s = wait_s
        self._received: queue.Queue[Sse | str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, args=(lines,), daemon=True)
        self._reader.start()

    def _read(self, lines: Iterator[str]) -> None:
        fields: dict[str, str] = {}
        try:
            for line in lines:
                if line.startswith(":"):
                    self._received.put(line)
                elif line:
                    name, _, value = line.partition(": ")
                    fields[name] = value
                elif fields:
                    data = json.loads(fields["data"])
                    self._received.put(Sse(fields["event"], fields["id"], data))
                    fields = {}
        except Exception:  # the test closed the stream
            return
        self._received.put(END)

    def next(self) -> Sse | str:
        try:
            return self._received.get(timeout=self._wait_s)
        except queue.Empty:
            pytest.fail(f"nothing on the stream for {self._wait_s} s")

    def events(self, count: int) -> list[Sse]:
        """The next `count` bet events (comments in between are skipped)."""
        found: list[Sse] = []
        while len(found) < count:
            item = self.next()
            if isinstance(item, Sse):
                found.append(item)
        return found

    def until_live(self) -> list[Sse]:
        """The events up to the comment that says the stream is live."""
        found: list[Sse] = []
        while True:
            item = self.next()
            if isinstance(item, Sse):
                found.append(item)
            elif item.startswith(": live"):
                return found

    def nothing_more(self) -> bool:
        """No bet event arrives within a moment (comments do not count)."""
        try:
            while True:
                if isinstance(self._received.get(timeout=1.0), Sse):
                    return False
        except queue.Empty:
            return True

    def rest(self) -> list[Sse | str]:
        """Everything until the server ends the stream."""
        found: list[Sse | str] = []
        while (item := self.next()) != END:
            found.append(item)
        return found
