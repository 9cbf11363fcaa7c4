"""Event writes from a process of their own, so the test's own clients, whose latency is being
measured, do not share an interpreter with fifty waiting threads."""

import threading
import time

import httpx

from bench.api import event_body

ODDS = {"team_1": "2.20", "team_2": "3.30", "draw": "3.10"}


def event_writes_for(
    url: str, event_id: str, headers: dict[str, str], writers: int, duration_s: float
) -> list[tuple[str, float, int]]:
    """`writers` operators writing at once for `duration_s`, each sending again as soon as it
    is answered: half publish new events, half change `event_id`'s odds. Returns (kind, took,
    status) per request; status 0 when no answer came."""
    answers: list[tuple[str, float, int]] = []
    lock = threading.Lock()
    # Every client made before the first request: making one costs CPU that would count
    # against the others' answers.
    ready = threading.Barrier(writers + 1)
    stop_at: list[float] = []

    def write(kind: str) -> None:
        with httpx.Client(base_url=url, timeout=30, headers=headers) as client:
            ready.wait()
            while time.monotonic() < stop_at[0]:
                sent = time.monotonic()
                try:
                    if kind == "POST /events":
                        status = client.post("/events", json=event_body()).status_code
                    else:
                        status = client.patch(
                            f"/events/{event_id}", json={"odds": ODDS}
                        ).status_code
                except httpx.HTTPError:
                    status = 0
                with lock:
                    answers.append((kind, time.monotonic() - sent, status))

    threads = [
        threading.Thread(target=write, args=("POST /events" if n % 2 else "PATCH /events",))
        for n in range(writers)
    ]
    for thread in threads:
        thread.start()
    stop_at.append(time.monotonic() + duration_s)
    ready.wait()
    for thread in threads:
        thread.join()
    return answers


def warm() -> None:
    """Nothing: calling it makes a worker process import this module (and the project)."""
