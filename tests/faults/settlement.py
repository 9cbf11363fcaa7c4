"""A match driven over HTTP through the running system while a fault test breaks things, and
the checks that every bet ended where the rules say: the event's changes are recorded by the
version they got, a sampler watches bets move while it runs, and the end state is checked row
by row in Postgres."""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import pairwise
from typing import Any

import httpx
import pytest

from bench.api import event_body
from betting.domain import BetState, EventState, Market, Score, score_bet
from tests.faults.conftest import Background, System, operator
from tests.integration.conftest import wait_for

# Retried while the system is broken, as an operator would: a 503 (or no answer) is retried.
RETRY_FOR_S = 120.0
# A season of one match: each change moves every bet of some market.
MATCH: tuple[dict[str, str], ...] = (
    {"state": "active"},
    {"score": "1-0"},
    {"score": "1-1"},
    {"score": "2-1"},
    {"score": "2-2"},
    {"state": "finished", "score": "3-2"},
)
SETTLED = frozenset({BetState.WIN, BetState.LOSE, BetState.VOID})


@dataclass(frozen=True)
class Facts:
    """An event's state and score as stored at one `score_version`."""

    state: EventState
    score: Score

    def target(self, market: str) -> BetState:
        return score_bet(Market(market), self.state, self.score)


def _with_retries(send: Callable[[], httpx.Response], expected: int) -> httpx.Response:
    deadline = time.monotonic() + RETRY_FOR_S
    while True:
        try:
            response = send()
        except httpx.HTTPError:
            response = None
        if response is not None and response.status_code == expected:
            return response
        if response is not None and response.status_code not in (502, 503):
            pytest.fail(f"answered {response.status_code}: {response.text}")
        if time.monotonic() > deadline:
            pytest.fail(f"not accepted within {RETRY_FOR_S:.0f} s")
        time.sleep(0.5)


@dataclass
class Match:
    """One event of the system and the facts each of its scoring versions stood for."""

    system: System
    event_id: str = ""
    facts: dict[int, Facts] = field(default_factory=dict)

    def publish(self) -> str:
        with self.system.client("line-provider") as client:
            response = _with_retries(
                lambda: client.post("/events", headers=operator(), json=event_body()), 202
            )
        self.event_id = response.json()["id"]
        self._wait_stored(lambda row: row is not None, "stored")
        self.facts[self._row()[1]] = Facts(EventState.CREATED, Score(0, 0))
        return self.event_id

    def change(self, changes: dict[str, str]) -> None:
        """PATCH the event; return once the event writer has stored the change."""
        before = self._row()[0]
        with self.system.client("line-provider") as client:
            _with_retries(
                lambda: client.patch(f"/events/{self.event_id}", headers=operator(), json=changes),
                202,
            )
        _, score_version, state, score = self._wait_stored(
            lambda row: row is not None and row[0] != before, f"{changes} stored"
        )
        self.facts[score_version] = Facts(EventState(state), Score.parse(score))

    def _row(self) -> tuple[Any, ...]:
        row = self._query()
        assert row is not None
        return row

    def _query(self) -> tuple[Any, ...] | None:
        try:
            conn = self.system.connect()
        except Exception:  # the database may be down in a fault test: look again later
            return None
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT version, score_version, state, score FROM events WHERE id = %s",
                    (self.event_id,),
                )
                row: tuple[Any, ...] | None = cur.fetchone()
                return row
        finally:
            conn.close()

    def _wait_stored(
        self, stored: Callable[[tuple[Any, ...] | None], bool], what: str
    ) -> tuple[Any, ...]:
        def check() -> tuple[Any, ...] | None:
            row = self._query()
            return row if stored(row) else None

        return wait_for(check, RETRY_FOR_S, f"event {self.event_id} {what}")

    @property
    def final(self) -> tuple[int, Facts]:
        version = max(self.facts)
        return version, self.facts[version]


class Sampler:
    """Reads the state and scored version of a sample of bets over and over while the test
    runs, and records every time one moved back: to an older scored version, out of a final
    state, or to a state its version's facts do not give (checked once the facts are known)."""

    def __init__(self, system: System, event_id: str, size: int = 1000) -> None:
        self.system, self.event_id, self.size = system, event_id, size
        self.samples = 0
        self.seen: dict[str, list[tuple[str, str, int]]] = {}
        self._conn: Any = None
        self._ids: list[str] = []
        self.loop = Background("sampler", self._sample, lambda: 0.2)

    def _sample(self) -> None:
        try:
            if self._conn is None:
                self._conn = self.system.connect()
                with self._conn.cursor() as cur:
                    cur.execute(
                        "SELECT id::text FROM bets WHERE event_id = %s ORDER BY random() LIMIT %s",
                        (self.event_id, self.size),
                    )
                    self._ids = [row[0] for row in cur.fetchall()]
            with self._conn.cursor() as cur:
                cur.execute(
                    "SELECT id::text, market, state, scored_version FROM bets "
                    "WHERE id = ANY(%s::uuid[])",
                    (self._ids,),
                )
                for bet_id, market, state, version in cur.fetchall():
                    history = self.seen.setdefault(bet_id, [])
                    if not history or history[-1][1:] != (state, version):
                        history.append((market, state, version))
            self.samples += 1
        except Exception:  # the database may be down: sample again when it is back
            self.close()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None

    def backward_moves(self, facts: dict[int, Facts]) -> list[str]:
        """Every observed change that was not a step forward, described."""
        wrong: list[str] = []
        for bet_id, history in self.seen.items():
            for (_, state, version), (_, next_state, next_version) in pairwise(history):
                if next_version < version or BetState(state) in SETTLED:
                    wrong.append(f"{bet_id}: {state}@{version} -> {next_state}@{next_version}")
            for market, state, version in history:
                known = facts.get(version)
                expected = BetState.NONE if version < 0 else known and known.target(market)
                if BetState(state) is not expected:
                    wrong.append(f"{bet_id}: {state}@{version}, its facts give {expected}")
        return wrong


# The payout the rules give each state (docs/DESIGN.md, "The payout"), written out again here
# rather than taken from the code under test.
EXPECTED_PAYOUT_SQL = """
CASE state WHEN 'win' THEN potential_payout WHEN 'lose' THEN 0.00 WHEN 'void' THEN amount END
"""


@dataclass(frozen=True)
class Outcome:
    bets: int
    by_state: dict[str, int]
    wrong_state: int
    wrong_version: int
    wrong_payout: int
    paid: Decimal


def outcome(system: System, match: Match) -> Outcome:
    """How the event's bets ended, against the event's last facts."""
    version, facts = match.final
    targets = {market.value: facts.target(market.value).value for market in Market}
    conn = system.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(
                f"""
                SELECT market, state, scored_version = %s, count(*),
                       count(*) FILTER (WHERE payout IS DISTINCT FROM {EXPECTED_PAYOUT_SQL}),
                       coalesce(sum(payout), 0)
                FROM bets WHERE event_id = %s GROUP BY 1, 2, 3
                """,
                (version, match.event_id),
            )
            rows = cur.fetchall()
    finally:
        conn.close()
    by_state: dict[str, int] = {}
    wrong_state = wrong_version = wrong_payout = 0
    paid = Decimal(0)
    for market, state, at_version, count, bad_payout, payout in rows:
        by_state[state] = by_state.get(state, 0) + count
        wrong_state += 0 if targets[market] == state else count
        wrong_version += 0 if at_version else count
        wrong_payout += bad_payout
        paid += payout
    return Outcome(
        bets=sum(by_state.values()),
        by_state=by_state,
        wrong_state=wrong_state,
        wrong_version=wrong_version,
        wrong_payout=wrong_payout,
        paid=paid,
    )


def wait_settled(system: System, match: Match, timeout_s: float) -> Outcome:
    """Wait until every bet has the event's last facts' state (or fail with what is left)."""
    last: list[Outcome] = []

    def settled() -> bool:
        try:
            last[:] = [outcome(system, match)]
        except Exception:  # the database may still be coming back
            return False
        return last[0].wrong_state == 0 and last[0].wrong_version == 0

    deadline = time.monotonic() + timeout_s
    while not settled():
        if time.monotonic() > deadline:
            pytest.fail(f"not settled after {timeout_s:.0f} s: {last}")
        time.sleep(0.5)
    return last[0]
