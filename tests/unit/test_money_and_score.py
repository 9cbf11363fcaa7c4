"""Money and odds (`parse_money`, `potential_payout`) and score text (`Score.parse`)."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from betting.domain import CENT, MAX_GOALS, MAX_MONEY, Score, parse_money, potential_payout
from tests.unit.strategies import FAST, goals, money

# --- parse_money --------------------------------------------------------------------------


@FAST
@given(value=money)
def test_positive_amount_with_at_most_two_places_is_accepted_unchanged(value: Decimal) -> None:
    parsed = parse_money(value)
    assert parsed == value
    assert parsed.as_tuple().exponent == -2


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0.01", "0.01"), ("1", "1.00"), ("1.5", "1.50"), ("10.00", "10.00"), ("1E+2", "100.00")],
)
def test_money_is_normalised_to_exactly_two_places(text: str, expected: str) -> None:
    assert str(parse_money(Decimal(text))) == expected


def test_largest_amount_the_database_holds_is_accepted() -> None:
    assert parse_money(MAX_MONEY) == Decimal("9999999999.99")


@pytest.mark.parametrize("text", ["0", "0.00", "-0", "-0.01", "-1", "-9999999999.99"])
def test_zero_or_negative_money_is_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="positive"):
        parse_money(Decimal(text))


@pytest.mark.parametrize("text", ["0.001", "1.001", "1.005", "2.999", "0.0001", "1E-30"])
def test_money_with_more_than_two_places_is_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="two decimal places"):
        parse_money(Decimal(text))


@st.composite
def sub_cent_amounts(draw: st.DrawFn) -> Decimal:
    """A positive amount up to the maximum with a non-zero digit below the cent."""
    cents = draw(st.integers(0, int(MAX_MONEY * 100) - 1))
    extra_places = draw(st.integers(1, 6))
    fraction = draw(st.integers(1, 10**extra_places - 1))
    return Decimal(cents).scaleb(-2) + Decimal(fraction).scaleb(-2 - extra_places)


@FAST
@given(value=sub_cent_amounts())
def test_any_amount_finer_than_a_cent_is_rejected(value: Decimal) -> None:
    with pytest.raises(ValueError, match="two decimal places"):
        parse_money(value)


@pytest.mark.parametrize("text", ["NaN", "-NaN", "sNaN", "Infinity", "-Infinity"])
def test_non_finite_money_is_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="finite"):
        parse_money(Decimal(text))


@pytest.mark.parametrize("text", ["10000000000.00", "9999999999.991", "1E+11"])
def test_money_above_the_maximum_is_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        parse_money(Decimal(text))


@FAST
@given(value=st.decimals(min_value=MAX_MONEY + CENT, max_value=Decimal("1E+20"), places=2))
def test_any_amount_above_the_maximum_is_rejected(value: Decimal) -> None:
    with pytest.raises(ValueError, match="exceed"):
        parse_money(value)


# --- potential_payout ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "odds", "expected"),
    [
        ("10.00", "1.85", "18.50"),
        ("10.00", "1.00", "10.00"),
        ("0.01", "1.50", "0.01"),  # 0.015 rounds down, not half-even or half-up
        ("0.03", "1.50", "0.04"),  # 0.045
        ("3.33", "3.33", "11.08"),  # 11.0889
        ("1.99", "1.99", "3.96"),  # 3.9601
        ("0.01", "0.50", "0.00"),
        ("9999999999.99", "9999999999.99", "99999999999800000000.00"),
    ],
)
def test_potential_payout_is_amount_times_odds_rounded_down_to_the_cent(
    amount: str, odds: str, expected: str
) -> None:
    assert str(potential_payout(Decimal(amount), Decimal(odds))) == expected


@FAST
@given(amount=money, odds=money)
def test_potential_payout_is_the_largest_cent_not_above_amount_times_odds(
    amount: Decimal, odds: Decimal
) -> None:
    result = potential_payout(amount, odds)
    exact = amount * odds
    assert result <= exact < result + CENT
    assert result.as_tuple().exponent == -2


@FAST
@given(amount=money, odds=money, more=money)
def test_potential_payout_never_decreases_when_the_amount_grows(
    amount: Decimal, odds: Decimal, more: Decimal
) -> None:
    assert potential_payout(amount + more, odds) >= potential_payout(amount, odds)


# --- Score.parse --------------------------------------------------------------------------


def test_every_goal_count_from_0_to_999_round_trips_through_text() -> None:
    for goals_1 in range(MAX_GOALS + 1):
        goals_2 = MAX_GOALS - goals_1
        text = f"{goals_1}-{goals_2}"
        score = Score.parse(text)
        assert (score.team_1, score.team_2) == (goals_1, goals_2)
        assert str(score) == text


@FAST
@given(team_1=goals, team_2=goals)
def test_score_text_round_trips(team_1: int, team_2: int) -> None:
    assert Score.parse(f"{team_1}-{team_2}") == Score(team_1, team_2)
    assert Score.parse(str(Score(team_1, team_2))) == Score(team_1, team_2)


@pytest.mark.parametrize(
    "text",
    [
        "1:0",
        "-1-0",
        "01-0",
        "0-01",
        "00-0",
        "1-0 ",
        " 1-0",
        "1-0\n",
        "",
        "-",
        "1-",
        "-0",
        "1--0",
        "1-0-0",
        "+1-0",
        "1000-0",
        "0-1000",
        "1.0-0",
        "a-b",
        "1 - 0",
        "\u0661-\u0660",  # Arabic-Indic digits are digits to int() but not to the API
        "\uff11-0",  # fullwidth 1
    ],
)
def test_malformed_score_text_is_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="score must look like"):
        Score.parse(text)


@FAST
@given(text=st.text(max_size=9))
def test_score_parse_accepts_only_canonical_text(text: str) -> None:
    try:
        score = Score.parse(text)
    except ValueError:
        return
    assert str(score) == text
    assert 0 <= score.team_1 <= MAX_GOALS
    assert 0 <= score.team_2 <= MAX_GOALS
