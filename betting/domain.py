"""The rules of the game: states, transitions, scoring, money. No framework imports."""

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from enum import Enum, StrEnum
from typing import Any


class EventState(StrEnum):
    CREATED = "created"
    ACTIVE = "active"
    FINISHED = "finished"
    CANCELLED = "cancelled"


class Market(StrEnum):
    TEAM_1 = "team_1"
    TEAM_2 = "team_2"
    DRAW = "draw"


class BetState(StrEnum):
    NONE = "none"
    WINNING = "winning"
    LOSING = "losing"
    WIN = "win"
    LOSE = "lose"
    VOID = "void"


LEGAL_TRANSITIONS: Mapping[EventState, frozenset[EventState]] = {
    EventState.CREATED: frozenset({EventState.ACTIVE, EventState.FINISHED, EventState.CANCELLED}),
    EventState.ACTIVE: frozenset({EventState.FINISHED, EventState.CANCELLED}),
    EventState.FINISHED: frozenset(),
    EventState.CANCELLED: frozenset(),
}

FINAL_STATES = frozenset(state for state, targets in LEGAL_TRANSITIONS.items() if not targets)
"""States an event never leaves: once there, it cannot change at all."""

SCORED_STATES = frozenset({EventState.ACTIVE, EventState.FINISHED})
"""States in which the score counts: it may change only into one of these."""


class Settlement(Enum):
    """What a bet pays the player, by the state it is in."""

    PENDING = "not settled yet: no payout"
    WINNINGS = "its potential payout"
    NOTHING = "nothing"
    STAKE = "its stake back"


SETTLEMENTS: Mapping[BetState, Settlement] = {
    BetState.NONE: Settlement.PENDING,
    BetState.WINNING: Settlement.PENDING,
    BetState.LOSING: Settlement.PENDING,
    BetState.WIN: Settlement.WINNINGS,
    BetState.LOSE: Settlement.NOTHING,
    BetState.VOID: Settlement.STAKE,
}
"""The one statement of what a settled bet pays; the database's payout is built from it."""

CENT = Decimal("0.01")
# Fits the database's numeric(12, 2).
MAX_MONEY = Decimal("9999999999.99")
MAX_GOALS = 999
SCORE_PATTERN = r"^(0|[1-9][0-9]{0,2})-(0|[1-9][0-9]{0,2})$"
"""A score as text: goals of team 1, a dash, goals of team 2; no leading zeros, at most 999."""
_SCORE_RE = re.compile(SCORE_PATTERN)


class DomainError(Exception):
    """A request or message that the rules forbid; `str(error)` is the reason."""


class IllegalTransition(DomainError):
    pass


class ScoreNotAllowed(DomainError):
    pass


class TeamsLocked(DomainError):
    """A change of teams on an event that has bets: it would change what they mean."""


class InvalidEvent(DomainError, ValueError):
    """Also a `ValueError`, so request validation reports it as invalid input."""


@dataclass(frozen=True, order=True)
class Score:
    team_1: int
    team_2: int

    @classmethod
    def parse(cls, text: str) -> "Score":
        """Parse `"N-M"` (non-negative goals, no leading zeros, at most 999)."""
        match = _SCORE_RE.fullmatch(text)
        if match is None:
            raise ValueError(f"score must look like '2-1', got {text!r}")
        return cls(int(match.group(1)), int(match.group(2)))

    def __str__(self) -> str:
        return f"{self.team_1}-{self.team_2}"

    def leader(self) -> Market:
        """The market that the score currently favours."""
        if self.team_1 > self.team_2:
            return Market.TEAM_1
        if self.team_2 > self.team_1:
            return Market.TEAM_2
        return Market.DRAW


NIL_NIL = Score(0, 0)


def parse_money(value: Decimal) -> Decimal:
    """Money and odds: finite, strictly positive, at most two decimal places."""
    if not value.is_finite():
        raise ValueError("must be a finite number")
    if value <= 0:
        raise ValueError("must be strictly positive")
    if value > MAX_MONEY:
        raise ValueError(f"must not exceed {MAX_MONEY}")
    exact = value.quantize(CENT)
    if exact != value:
        raise ValueError("must have at most two decimal places")
    return exact


def potential_payout(amount: Decimal, odds: Decimal) -> Decimal:
    """What a bet pays if it wins: amount × odds, rounded down to the cent."""
    return (amount * odds).quantize(CENT, rounding=ROUND_DOWN)


def settled_payout(state: BetState, amount: Decimal, potential: Decimal) -> Decimal | None:
    """What a bet in `state` pays (`SETTLEMENTS`): None until it is settled."""
    return {
        Settlement.PENDING: None,
        Settlement.WINNINGS: potential,
        Settlement.NOTHING: Decimal("0.00"),
        Settlement.STAKE: amount,
    }[SETTLEMENTS[state]]


def score_bet(market: Market, state: EventState, score: Score) -> BetState:
    """The state a bet on `market` must have for an event in `state` with `score`."""
    if state is EventState.CREATED:
        return BetState.NONE
    if state is EventState.CANCELLED:
        return BetState.VOID
    ahead = score.leader() is market
    if state is EventState.ACTIVE:
        return BetState.WINNING if ahead else BetState.LOSING
    return BetState.WIN if ahead else BetState.LOSE


def check_transition(current: EventState, new: EventState) -> None:
    """Raise `IllegalTransition` unless `current → new` is allowed (staying put is)."""
    if new is not current and new not in LEGAL_TRANSITIONS[current]:
        raise IllegalTransition(f"an event cannot go from {current} to {new}")


def check_deadline(event_date: datetime, deadline: datetime) -> None:
    """Betting must close no later than the event starts."""
    if deadline > event_date:
        raise InvalidEvent("deadline must not be later than event_date")


def is_open(state: EventState, deadline: datetime, now: datetime) -> bool:
    """Whether a bet may be placed, changed or withdrawn now."""
    return state is EventState.CREATED and now < deadline


@dataclass(frozen=True)
class Odds:
    team_1: Decimal
    team_2: Decimal
    draw: Decimal

    def for_market(self, market: Market) -> Decimal:
        return {Market.TEAM_1: self.team_1, Market.TEAM_2: self.team_2, Market.DRAW: self.draw}[
            market
        ]


@dataclass(frozen=True)
class EventFacts:
    """Everything an operator can set on an event, as the rules see it."""

    type: str
    team_1: str
    team_2: str
    event_date: datetime
    deadline: datetime
    odds: Odds
    state: EventState = EventState.CREATED
    score: Score = NIL_NIL


FACT_FIELDS = frozenset(field.name for field in dataclasses.fields(EventFacts))
"""The names of `EventFacts`' fields: what a change may name."""

SCORING_INPUTS = frozenset({"state", "score"})
"""The event fields bet states depend on: `score_bet` reads these and nothing else."""


def moves_bets(changed: Iterable[str]) -> bool:
    """Whether a change to the event fields named in `changed` can change bet states."""
    return not SCORING_INPUTS.isdisjoint(changed)


TEAM_FIELDS = frozenset({"team_1", "team_2"})
"""The event fields that say what a bet on a market means: fixed once the event has bets."""


def check_teams_kept(changed: Iterable[str], has_bets: Callable[[], bool]) -> None:
    """Raise `TeamsLocked` if `changed` names a team and the event has bets.

    `has_bets` is asked only when a team changes, so a caller pays for its query only then.
    """
    if not TEAM_FIELDS.isdisjoint(changed) and has_bets():
        raise TeamsLocked("the event has bets: its teams can no longer change")


def changed_fields(before: EventFacts, after: EventFacts) -> frozenset[str]:
    """The names of the fields whose values differ between `before` and `after`."""
    return frozenset(name for name in FACT_FIELDS if getattr(before, name) != getattr(after, name))


def check_event(facts: EventFacts) -> None:
    """Rules that hold for any event, whatever its state."""
    if facts.team_1 == facts.team_2:
        raise InvalidEvent("team_1 and team_2 must differ")
    check_deadline(facts.event_date, facts.deadline)


def new_event(facts: EventFacts) -> EventFacts:
    """Validate a freshly published event: it starts `created` at 0-0."""
    check_event(facts)
    if facts.state is not EventState.CREATED or facts.score != NIL_NIL:
        raise InvalidEvent("a new event starts in state created with score 0-0")
    return facts


def apply_changes(current: EventFacts, changes: Mapping[str, Any]) -> EventFacts:
    """Return the event after `changes`, or raise the rule they break.

    A finished or cancelled event is final. State moves only along `LEGAL_TRANSITIONS`. The
    score changes only on an event that is active (rule 4), also in the move that finishes it;
    never on a created event, whatever move comes with it, nor with a cancellation.
    """
    unknown = set(changes) - FACT_FIELDS
    if unknown:
        raise InvalidEvent(f"unknown fields: {', '.join(sorted(unknown))}")
    if current.state in FINAL_STATES and changes:
        raise IllegalTransition(f"a {current.state} event cannot change")
    new_state = EventState(changes.get("state", current.state))
    check_transition(current.state, new_state)
    new_score = changes.get("score", current.score)
    if new_score != current.score:
        if new_state not in SCORED_STATES:
            raise ScoreNotAllowed(f"the score of a {new_state} event cannot change")
        if current.state is not EventState.ACTIVE:
            raise ScoreNotAllowed(f"the score of a {current.state} event cannot change")
    updated = dataclasses.replace(current, **{**changes, "state": new_state})
    check_event(updated)
    return updated


@dataclass(frozen=True)
class MarketTotals:
    """The bets on one market of an event: how many, their stakes, what they pay if it wins."""

    bets: int = 0
    stake: Decimal = Decimal("0.00")
    potential_payout: Decimal = Decimal("0.00")


@dataclass(frozen=True)
class Book:
    """The operator's position on an event, from the totals of its bets per market."""

    markets: Mapping[Market, MarketTotals]

    @classmethod
    def of(cls, totals: Mapping[Market, MarketTotals]) -> "Book":
        """Every market, those nobody bet on at zero."""
        return cls({market: totals.get(market, MarketTotals()) for market in Market})

    @property
    def bets(self) -> int:
        return sum(totals.bets for totals in self.markets.values())

    @property
    def stake(self) -> Decimal:
        return sum((totals.stake for totals in self.markets.values()), Decimal("0.00"))

    def result_if(self, outcome: Market) -> Decimal:
        """What the operator keeps if `outcome` happens: every stake in, the winnings of the
        bets on that market out."""
        return self.stake - self.markets[outcome].potential_payout

    def settled_result(self, state: EventState, score: Score) -> Decimal | None:
        """What the operator keeps once every bet of a finished or cancelled event is settled:
        every stake in, every payout out; None while the event can still change.

        A payout depends only on the bet's state, linearly on its stake and potential payout
        (`settled_payout`), and all bets of a market share their final state: so a market's
        payouts are `settled_payout` of its totals.
        """
        if state not in FINAL_STATES:
            return None
        paid = Decimal("0.00")
        for market, totals in self.markets.items():
            payout = settled_payout(
                score_bet(market, state, score), totals.stake, totals.potential_payout
            )
            assert payout is not None, "a final event settles every bet"
            paid += payout
        return self.stake - paid
