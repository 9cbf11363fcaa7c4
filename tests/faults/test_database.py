"""Postgres really stopped (as by a crash) for 10 s while players bet and a match is settled:
every database-backed call answers 503 within a second meanwhile (never a 500, never a hang),
both servers' /readyz say so, the functions back off (or are restarted) and catch up, and
afterwards every accepted bet is there and every bet of the match is settled right."""

import threading
import time

import httpx
import pytest

from tests.faults.conftest import System, insert_bets, player, report
from tests.faults.settlement import Match, wait_settled
from tests.faults.traffic import NO_ANSWER, Call, Traffic, get_bets, get_events, ready, summary

pytestmark = [pytest.mark.faults, pytest.mark.timeout(400)]

OUTAGE_S = 10.0
ANSWER_WITHIN_S = 1.0
SETTLED_BETS = 5_000


def placing(event_id: str, accepted: list[str]) -> Call:
    """POST /bets on `event_id`, keeping the id of each bet accepted."""
    lock = threading.Lock()
    headers = player()

    def call(client: httpx.Client) -> httpx.Response:
        body = {"event_id": event_id, "market": "team_1", "amount": "1.00"}
        response = client.post("/bets", headers=headers, json=body)
        if response.status_code == 201:
            with lock:
                accepted.append(response.json()["id"])
        return response

    return call


def test_while_postgres_is_down_calls_answer_503_fast_and_afterwards_nothing_is_lost_or_wrong(
    system: System,
) -> None:
    open_match, settled_match = Match(system), Match(system)
    open_event = open_match.publish()
    settled_event = settled_match.publish()
    insert_bets(system, settled_event, SETTLED_BETS)
    accepted: list[str] = []
    traffic = Traffic(system.urls, timeout_s=10)
    traffic.add("GET /bets", "bet-maker", get_bets)
    traffic.add("POST /bets", "bet-maker", placing(open_event, accepted))
    traffic.add("GET /events", "line-provider", get_events)
    traffic.add("bet maker /readyz", "bet-maker", ready, pause_s=0.5)
    traffic.add("line provider /readyz", "line-provider", ready, pause_s=0.5)
    with traffic.running():
        time.sleep(3)
        settled_match.change({"state": "active"})
        system.postgres.stop(mode="immediate")
        down = time.monotonic()
        try:
            time.sleep(OUTAGE_S)
        finally:
            system.postgres.start()
        up = time.monotonic()
        system.wait_ready(timeout_s=60)
        ready_after_s = time.monotonic() - up
        settled_match.change({"state": "finished", "score": "2-1"})
        outcome = wait_settled(system, settled_match, timeout_s=180)
        settled_after_s = time.monotonic() - up
        time.sleep(1)

    conn = system.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM bets WHERE event_id = %s", (open_event,))
            stored = cur.fetchone()[0]
            cur.execute("SELECT count(*) FROM bets WHERE id = ANY(%s::uuid[])", (accepted,))
            found = cur.fetchone()[0]
    finally:
        conn.close()
    during = {name: traffic.between(name, down, up) for name in traffic.answers}
    # A placement under way when the server died may have committed without its answer
    # getting out: the player saw a 503, and the Idempotency-Key is how they find out.
    unknown = [a for a in traffic.between("POST /bets", 0, down) if a.status != 201]
    lines = [f"[postgres stopped {up - down:.1f} s] while it was down:"]
    lines += [f"  {name}: {summary(answers)}" for name, answers in during.items()]
    lines.append(
        f"  both servers ready {ready_after_s:.1f} s after it was back; the match settled "
        f"{settled_after_s:.1f} s after ({outcome.bets:,} bets, {outcome.by_state}); "
        f"{len(accepted)} bets accepted over HTTP, {found} of them stored, {stored} on the "
        f"event ({len(unknown)} placements answered 503 as it went down); "
        f"restarts {dict(system.supervisor.restarts)}"
    )
    report("\n".join(lines))

    for name in ("GET /bets", "POST /bets", "GET /events"):
        statuses = {answer.status for answer in during[name]}
        # A call under way when the server went may have finished first; none may fail
        # otherwise than with a 503, nor hang.
        assert 503 in statuses and statuses <= {200, 201, 503}, (name, summary(during[name]))
        assert NO_ANSWER not in statuses
        slow = [(round(a.sent_at - down, 2), round(a.took_s, 2)) for a in during[name]]
        slow = [(at, took) for at, took in slow if took > ANSWER_WITHIN_S]
        assert not slow, (name, "sent that long after the stop, took", slow)
    for name in ("bet maker /readyz", "line provider /readyz"):
        assert any(a.status == 503 for a in during[name]), (name, summary(during[name]))
    assert found == len(accepted)  # none lost
    assert len(accepted) <= stored <= len(accepted) + len(unknown)
    assert (outcome.wrong_state, outcome.wrong_version, outcome.wrong_payout) == (0, 0, 0)
    assert outcome.bets == SETTLED_BETS
