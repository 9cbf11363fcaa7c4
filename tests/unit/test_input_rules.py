"""The input conventions of docs/API.md, one rule at a time, on the types that enforce them."""

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from betting.models import TIMESTAMP_PATTERN, UtcDatetime
from tests.unit.strategies import FAST

timestamp = TypeAdapter(UtcDatetime)

# --- Timestamps ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "9999-12-31T23:00:00-05:00",  # 10000-01-01T04:00Z
        "9999-12-31T23:59:59.999999-00:01",
        "0001-01-01T00:00:00+05:00",  # 0000-12-31T19:00Z
        "0001-01-01T00:30:00+01:00",
    ],
)
def test_a_timestamp_outside_the_calendar_once_in_utc_is_invalid_input(text: str) -> None:
    with pytest.raises(ValidationError, match="years 1 to 9999"):
        timestamp.validate_python(text)


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("0001-01-01T05:00:00+05:00", datetime(1, 1, 1, tzinfo=UTC)),
        ("9999-12-31T18:59:59-05:00", datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)),
        ("2030-05-01T18:45:00+02:00", datetime(2030, 5, 1, 16, 45, tzinfo=UTC)),
        ("2030-05-01T18:45:00Z", datetime(2030, 5, 1, 18, 45, tzinfo=UTC)),
        ("2030-05-01T18:45:00.5-00:30", datetime(2030, 5, 1, 19, 15, 0, 500000, tzinfo=UTC)),
    ],
)
def test_a_timestamp_with_an_offset_is_kept_in_utc(text: str, utc: datetime) -> None:
    parsed = timestamp.validate_python(text)
    assert parsed == utc
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize("value", [1700000000, 1700000000.5, True, None, [], {}])
def test_a_timestamp_that_is_not_text_is_invalid_input(value: Any) -> None:
    with pytest.raises(ValidationError):
        timestamp.validate_python(value)


@pytest.mark.parametrize(
    "text",
    [
        "1700000000",  # a Unix time as text
        "1700000000.5",
        "2030-05-01T18:45:00",  # no offset
        "2030-05-01",
        "2030-05-01T18:45+02:00",  # no seconds
        "2030-05-01 18:45:00+02:00",
        "2030-05-01t18:45:00z",
        "2030-05-01T18:45:00+0200",
        "2030-05-01T18:45:00.1234567+02:00",  # finer than a microsecond
        "2030-05-01T18:45:60Z",  # a leap second Python cannot hold
        "2030-02-30T18:45:00Z",
        "0000-01-01T12:00:00Z",
        " 2030-05-01T18:45:00Z",
        "2030-05-01T18:45:00Z\n",
        "２０３０-05-01T18:45:00Z",  # fullwidth digits
    ],
)
def test_a_timestamp_must_be_an_rfc_3339_date_time_with_an_offset(text: str) -> None:
    with pytest.raises(ValidationError):
        timestamp.validate_python(text)


def test_a_timestamp_given_as_a_datetime_inside_the_program_must_carry_an_offset() -> None:
    aware = datetime(2030, 5, 1, 18, 45, tzinfo=timezone(timedelta(hours=2)))
    assert timestamp.validate_python(aware) == datetime(2030, 5, 1, 16, 45, tzinfo=UTC)
    with pytest.raises(ValidationError, match="UTC offset"):
        timestamp.validate_python(datetime(2030, 5, 1, 18, 45))


def test_the_json_schema_gives_the_timestamp_format_and_pattern() -> None:
    assert timestamp.json_schema() == {
        "type": "string",
        "format": "date-time",
        "pattern": TIMESTAMP_PATTERN,
    }


offsets = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


@FAST
@given(moment=st.datetimes(timezones=offsets).map(lambda d: d.replace(microsecond=0)))
def test_every_rfc_3339_timestamp_within_the_calendar_is_accepted_and_no_other(
    moment: datetime,
) -> None:
    text = moment.isoformat().replace("+00:00", "Z")
    assert re.fullmatch(TIMESTAMP_PATTERN, text), text
    try:
        expected = moment.astimezone(UTC)
    except OverflowError:
        with pytest.raises(ValidationError, match="years 1 to 9999"):
            timestamp.validate_python(text)
    else:
        assert timestamp.validate_python(text) == expected


@FAST
@given(text=st.from_regex(TIMESTAMP_PATTERN, fullmatch=True))
def test_the_timestamp_pattern_admits_only_what_the_server_reads_or_calls_out_of_range(
    text: str,
) -> None:
    # The pattern cannot know month lengths or the calendar's edges; everything else it admits
    # is read, and what it does not know is refused with a reason, never a crash.
    try:
        timestamp.validate_python(text)
    except ValidationError as error:
        assert any(reason in str(error) for reason in ("day is out of range", "years 1 to 9999")), (
            str(error)
        )
