"""A whole match against the running system: create an event, bet, play it out, see the bet
settled. --api is where /events is served (the line provider, or one address for the whole API:
an Ingress, `make run`'s front); --bets-api, if given, where /bets is (the bet maker).

    python3 launcher/smoke.py --api http://127.0.0.1:8000 --operator-token T --player-token T
    python3 launcher/smoke.py --api http://127.0.0.1:8001 --bets-api http://127.0.0.1:8002 ...

Standard library only, so it runs from any Python 3.11 (scripts/kind-up.sh runs it from the
host); in the image `betting smoke` runs it with tokens it mints itself (the chart's `helm test`).
"""

import argparse
import json
import time
import urllib.error
import urllib.request
import uuid
from typing import Any


class Api:
    def __init__(self, base: str, bets_base: str, operator: str, player: str) -> None:
        self.base = base.rstrip("/")
        self.bets_base = bets_base.rstrip("/")
        self.tokens = {"operator": operator, "player": player}

    def call(
        self, method: str, path: str, body: dict[str, Any] | None = None, *, as_: str = "player"
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.tokens[as_]}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if method == "POST" and path == "/bets":
            headers["Idempotency-Key"] = str(uuid.uuid4())
        base = self.bets_base if path.startswith("/bets") else self.base
        # The URL is an address given on the command line.
        request = urllib.request.Request(base + path, data, headers, method=method)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def expect(self, status: int, method: str, path: str, body: Any = None, **kw: str) -> Any:
        got, payload = self.call(method, path, body, **kw)
        if got != status:
            raise SystemExit(f"{method} {path}: expected {status}, got {got}: {payload}")
        return payload

    def wait_for(self, what: str, path: str, done: Any, timeout_s: float) -> Any:
        deadline = time.monotonic() + timeout_s
        payload: Any = None
        while time.monotonic() < deadline:
            status, payload = self.call("GET", path, as_="operator")
            if status == 200 and done(payload):
                return payload
            time.sleep(0.5)
        raise SystemExit(f"timed out waiting for {what}; last answer: {payload}")


def add_arguments(parser: argparse.ArgumentParser, *, tokens_required: bool) -> None:
    """The smoke test's options (here and in `betting smoke`, which can mint the tokens)."""
    parser.add_argument("--api", default="http://127.0.0.1:8000", help="where /events is")
    parser.add_argument("--bets-api", help="where /bets is, if not at --api")
    parser.add_argument("--operator-token", required=tokens_required)
    parser.add_argument("--player-token", required=tokens_required)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per step")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_arguments(parser, tokens_required=True)
    args = parser.parse_args()
    play(Api(args.api, args.bets_api or args.api, args.operator_token, args.player_token), args)


def play(api: Api, args: argparse.Namespace) -> None:
    """The match, step by step; SystemExit with what went wrong."""
    wait = args.timeout

    event = api.expect(
        202,
        "POST",
        "/events",
        {
            "type": "football",
            "team_1": "Ajax",
            "team_2": "PSV",
            "event_date": "2030-05-01T18:45:00+02:00",
            "odds": {"team_1": "2.10", "team_2": "3.40", "draw": "3.00"},
        },
        as_="operator",
    )
    path = f"/events/{event['id']}"
    print(f"event {event['id']} accepted", flush=True)
    api.wait_for("the event to be stored", path, lambda e: e["state"] == "created", wait)

    bet = api.expect(
        201, "POST", "/bets", {"event_id": event["id"], "market": "team_1", "amount": "10.00"}
    )
    print(f"bet {bet['id']} placed: {bet['amount']} on team_1 at {bet['odds']}", flush=True)

    api.expect(202, "PATCH", path, {"state": "active"}, as_="operator")
    api.wait_for("kick-off", path, lambda e: e["state"] == "active", wait)
    api.expect(202, "PATCH", path, {"state": "finished", "score": "2-1"}, as_="operator")
    api.wait_for("the final whistle", path, lambda e: e["state"] == "finished", wait)
    print("event finished 2-1", flush=True)

    settled = api.wait_for(
        "the bet to be settled", f"/bets/{bet['id']}", lambda b: b["state"] == "win", wait
    )
    if settled["potential_payout"] != "21.00":
        raise SystemExit(f"bet settled with payout {settled['potential_payout']}, expected 21.00")
    print(f"bet settled: {settled['state']}, pays {settled['potential_payout']}", flush=True)
    print("smoke test passed")


if __name__ == "__main__":
    main()
