"""The book: the operator's result per outcome, and once the event is final, what it kept."""

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from betting.domain import (
    FINAL_STATES,
    Book,
    EventState,
    Market,
    MarketTotals,
    Score,
    potential_payout,
    score_bet,
    settled_payout,
)
from tests.unit.strategies import FAST, event_states, markets, scores

Placed = tuple[Market, Decimal, Decimal]  # market, amount, odds

stakes = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("100000"), places=2)
odds = st.decimals(min_value=Decimal("1.01"), max_value=Decimal("50"), places=2)
placed_bets = st.lists(st.tuples(markets, stakes, odds), max_size=30)


def book_of(bets: list[Placed]) -> Book:
    """The book as the database's per-market totals give it."""
    totals: dict[Market, MarketTotals] = {}
    for market, amount, price in bets:
        seen = totals.get(market, MarketTotals())
        totals[market] = MarketTotals(
            seen.bets + 1,
            seen.stake + amount,
            seen.potential_payout + potential_payout(amount, price),
        )
    return Book.of(totals)


def test_a_book_without_bets_has_every_market_at_zero() -> None:
    book = Book.of({})

    assert book.markets == dict.fromkeys(Market, MarketTotals(0, Decimal(0), Decimal(0)))
    assert book.stake == Decimal("0.00")
    assert {book.result_if(outcome) for outcome in Market} == {Decimal("0.00")}


def test_the_result_if_an_outcome_happens_is_every_stake_less_that_markets_winnings() -> None:
    book = book_of(
        [
            (Market.TEAM_1, Decimal("10.00"), Decimal("2.15")),
            (Market.TEAM_1, Decimal("5.00"), Decimal("2.15")),
            (Market.DRAW, Decimal("20.00"), Decimal("3.00")),
        ]
    )

    assert book.bets == 3
    assert book.stake == Decimal("35.00")
    assert book.markets[Market.TEAM_1] == MarketTotals(2, Decimal("15.00"), Decimal("32.25"))
    assert book.result_if(Market.TEAM_1) == Decimal("2.75")
    assert book.result_if(Market.TEAM_2) == Decimal("35.00")
    assert book.result_if(Market.DRAW) == Decimal("-25.00")


@FAST
@given(placed_bets, event_states, scores)
def test_the_settled_result_is_every_stake_less_every_bets_payout(
    bets: list[Placed], state: EventState, score: Score
) -> None:
    result = book_of(bets).settled_result(state, score)

    if state not in FINAL_STATES:
        assert result is None
        return
    paid = Decimal("0.00")
    for market, amount, price in bets:
        payout = settled_payout(
            score_bet(market, state, score), amount, potential_payout(amount, price)
        )
        assert payout is not None
        paid += payout
    assert result == sum((amount for _, amount, _ in bets), Decimal("0.00")) - paid


@FAST
@given(placed_bets, scores)
def test_a_finished_match_settles_at_the_result_of_the_outcome_that_happened(
    bets: list[Placed], score: Score
) -> None:
    book = book_of(bets)

    assert book.settled_result(EventState.FINISHED, score) == book.result_if(score.leader())


@FAST
@given(placed_bets, scores)
def test_a_cancelled_match_pays_every_stake_back_and_the_operator_keeps_nothing(
    bets: list[Placed], score: Score
) -> None:
    assert book_of(bets).settled_result(EventState.CANCELLED, score) == Decimal("0.00")
