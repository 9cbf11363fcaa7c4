"""`make soak`: one event with 2M bets settles in one piece: activated and finished, every bet
gets its state and payout, and no function is restarted by its liveness probe or crashes, nor
loses its partitions to a rebalance (a step that holds the consumer past its poll interval or
session would)."""

import re
import time

import pytest

from tests.faults.conftest import FUNCTIONS, System, insert_bets, report
from tests.faults.settlement import Match, wait_settled

pytestmark = [pytest.mark.faults, pytest.mark.soak, pytest.mark.timeout(4 * 3600)]

BETS = 2_000_000
# What librdkafka logs when a member leaves its group or is pushed out of it.
REBALANCE = re.compile(r"MAXPOLL|SESSTMOUT|revoking assignment|[Rr]ebalanc")


def rebalances(system: System) -> dict[str, int]:
    counts = {}
    for name in FUNCTIONS:
        log = (system.workdir / f"{name}.log").read_text(errors="replace")
        counts[name] = len(REBALANCE.findall(log))
    return counts


def test_one_event_with_two_million_bets_settles_without_a_rebalance_or_a_probe_restart(
    system: System,
) -> None:
    match = Match(system)
    event_id = match.publish()
    started = time.monotonic()
    insert_bets(system, event_id, BETS)
    inserted_s = time.monotonic() - started
    steps = []
    for changes in ({"state": "active"}, {"state": "finished", "score": "1-0"}):
        started = time.monotonic()
        match.change(changes)
        outcome = wait_settled(system, match, timeout_s=3 * 3600)
        steps.append(f"{changes}: {time.monotonic() - started:.0f} s")
    moved = rebalances(system)
    report(
        f"[one event, {BETS:,} bets] inserted in {inserted_s:.0f} s; settled: {'; '.join(steps)}; "
        f"{outcome.by_state}, paid {outcome.paid}; restarts {dict(system.supervisor.restarts)}, "
        f"probe kills {dict(system.supervisor.probe_kills)}, rebalance lines {moved}"
    )
    assert outcome.bets == BETS
    assert (outcome.wrong_state, outcome.wrong_version, outcome.wrong_payout) == (0, 0, 0)
    assert system.supervisor.restarts == {} and system.supervisor.probe_kills == {}
    assert sum(moved.values()) == 0, moved
