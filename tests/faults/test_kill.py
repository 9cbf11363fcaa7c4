"""SIGKILL the functions, one at a time and all together, at random moments while a match is
settled, each restarted as Kubernetes would: every bet still ends in the state and with the
payout the rules give, none is seen moving back, none accepted is left unscored. 20k bets in
`make test`; 100k and 1M in `make soak`."""

import random
import time
import uuid
from collections import Counter

import pytest

from tests.faults.conftest import (
    FUNCTIONS,
    Background,
    System,
    insert_bets,
    player,
    random_pause,
    report,
)
from tests.faults.settlement import MATCH, Match, Sampler, wait_settled

# Bets placed over HTTP while the functions are being killed; the rest are inserted.
HTTP_BETS = 200
MIN_KILLS = 5
ALL = "all"

pytestmark = pytest.mark.faults


class Killer:
    """SIGKILLs the functions at random moments: each in turn, then all three at once, and so
    on; the supervisor restarts them. Counts only kills of a process that was running."""

    def __init__(self, system: System, pause_s: tuple[float, float]) -> None:
        self.system = system
        self.kills: Counter[str] = Counter()
        self._turn = 0
        self.loop = Background("killer", self._kill, lambda: random_pause(*pause_s))

    @property
    def total(self) -> int:
        return sum(self.kills.values())

    def _kill(self) -> None:
        targets = [*FUNCTIONS, ALL]
        target = targets[self._turn % len(targets)]
        victims = FUNCTIONS if target == ALL else (target,)
        if all(self.system.components[name].running() for name in victims):
            for name in victims:
                self.system.supervisor.kill(name)
            self.kills[target] += 1
            self._turn += 1


def place_bets_over_http(system: System, event_id: str, count: int) -> list[str]:
    """Bets placed through the bet maker; the ids of those it accepted (201)."""
    accepted: list[str] = []
    markets = ("team_1", "team_2", "draw")
    with system.client("bet-maker") as client:
        for i in range(count):
            body = {"event_id": event_id, "market": markets[i % 3], "amount": "2.50"}
            response = client.post("/bets", headers=player(), json=body)
            assert response.status_code == 201, response.text
            accepted.append(response.json()["id"])
    return accepted


def count_bets(system: System, event_id: str, ids: list[str]) -> tuple[int, int]:
    """(bets of the event, how many of `ids` exist)."""
    conn = system.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM bets WHERE event_id = %s", (event_id,))
            total: int = cur.fetchone()[0]
            cur.execute("SELECT count(*) FROM bets WHERE id = ANY(%s::uuid[])", (ids,))
            found: int = cur.fetchone()[0]
            return total, found
    finally:
        conn.close()


SIZES = [
    pytest.param(20_000, id="20k", marks=pytest.mark.timeout(600)),
    pytest.param(100_000, id="100k", marks=[pytest.mark.soak, pytest.mark.timeout(1800)]),
    pytest.param(1_000_000, id="1M", marks=[pytest.mark.soak, pytest.mark.timeout(7200)]),
]


@pytest.mark.parametrize("bets", SIZES)
def test_functions_sigkilled_during_settlement_still_settle_every_bet_right(
    system: System, bets: int
) -> None:
    random.seed(uuid.uuid4().int)
    match = Match(system)
    event_id = match.publish()
    insert_bets(system, event_id, bets - HTTP_BETS)
    accepted = place_bets_over_http(system, event_id, HTTP_BETS)
    # Kills spaced so the restarted consumers get a few seconds of work done in between.
    killer = Killer(system, pause_s=(4.0, 8.0) if bets <= 20_000 else (5.0, 20.0))
    sampler = Sampler(system, event_id)
    started = time.monotonic()
    with sampler.loop.running(), killer.loop.running():
        for number, changes in enumerate(MATCH, start=1):
            match.change(changes)
            # At least one kill lands between changes, so they fall all through the settlement.
            goal = min(number, MIN_KILLS)
            while killer.total < goal:
                time.sleep(0.1)
        outcome = wait_settled(system, match, timeout_s=300 + bets / 400)
        kills_before_settled = killer.total
    settle_s = time.monotonic() - started
    total, found = count_bets(system, event_id, accepted)
    backward = sampler.backward_moves(match.facts)
    version, facts = match.final

    report(
        f"[sigkill {bets:,} bets] settled in {settle_s:.1f} s with {kills_before_settled} "
        f"kills ({dict(killer.kills)}); restarts {dict(system.supervisor.restarts)}, "
        f"probe kills {dict(system.supervisor.probe_kills)}; {total:,} bets "
        f"({found}/{len(accepted)} placed over HTTP found), states {outcome.by_state}, "
        f"paid {outcome.paid}; {sampler.samples} samples of {len(sampler.seen)} bets, "
        f"{len(backward)} backward moves; final {facts.state.value} {facts.score} "
        f"at version {version}"
    )
    assert kills_before_settled >= MIN_KILLS
    assert total == bets and found == len(accepted)
    assert outcome.bets == bets
    assert (outcome.wrong_state, outcome.wrong_version, outcome.wrong_payout) == (0, 0, 0)
    assert "none" not in outcome.by_state  # no accepted bet is left unscored
    assert sampler.samples > 10 and backward == [], backward[:10]
