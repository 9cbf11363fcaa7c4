"""The input conventions of docs/API.md, one rule at a time, on the types that enforce them.

The gateway reads a body with `betting.exact_json.loads`, then validates; so do these tests."""

import json
import re
import sys
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from betting import exact_json
from betting.domain import MAX_MONEY
from betting.models import (
    MONEY_OUT_PATTERN,
    MONEY_PATTERN,
    TEXT_PATTERN,
    TIMESTAMP_PATTERN,
    WHITESPACE,
    EventType,
    EventUpdate,
    Money,
    Name,
    UtcDatetime,
)
from gateway.edge import EDGE_RULES, ExactJSONRoute
from tests.apps import APPS, load
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


# --- Reading JSON exactly -----------------------------------------------------------------


def test_a_json_number_keeps_every_digit_it_was_written_with() -> None:
    assert exact_json.loads(b'{"odds": 1.850000000000000001}') == {
        "odds": Decimal("1.850000000000000001")
    }
    assert exact_json.loads(b"[0.1, 10, -2.50]") == [Decimal("0.1"), 10, Decimal("-2.50")]
    assert exact_json.loads(b"[10]")[0].__class__ is int


@pytest.mark.parametrize("text", ["1e1", "1E+2", "1.0e1", "-2.5E-3"])
def test_a_json_number_in_exponent_notation_is_kept_apart(text: str) -> None:
    [number] = exact_json.loads(f"[{text}]".encode())
    assert number == exact_json.ExponentNumber(text)


@pytest.mark.parametrize(
    "body",
    [
        b'{"odds": NaN}',
        b'{"odds": Infinity}',
        b'{"odds": -Infinity}',
        b'{"team_1": "\xff"}',  # not UTF-8
        b"[" * 100_000,  # deeper than the parser's recursion
        b"[" + b"9" * 5000 + b"]",  # an integer Python refuses to read
        b'{"a": 1,}',
        b"",
    ],
)
def test_anything_that_is_not_json_is_a_decode_error(body: bytes) -> None:
    with pytest.raises(json.JSONDecodeError):
        exact_json.loads(body)


# --- Money --------------------------------------------------------------------------------

money_type = TypeAdapter(Money)


def _read_money(json_text: str) -> Decimal:
    """A money value as the gateway reads it from a body: `json_text` is the JSON literal."""
    return money_type.validate_python(exact_json.loads(json_text.encode()))


@pytest.mark.parametrize(
    ("json_text", "expected"),
    [
        ('"1.85"', "1.85"),
        ("1.85", "1.85"),
        ('"10"', "10.00"),
        ("10", "10.00"),
        ("10.0", "10.00"),
        ('"0.01"', "0.01"),
        ('"0.5"', "0.50"),
        ("1.500", "1.50"),  # a whole number of cents, however many zeros follow
        ('"1.500"', "1.50"),
        ('"9999999999.99"', "9999999999.99"),
        ("9999999999.99", "9999999999.99"),
    ],
)
def test_money_is_read_exactly_from_a_json_string_or_number(json_text: str, expected: str) -> None:
    value = _read_money(json_text)
    assert value == Decimal(expected)
    assert money_type.dump_python(value, mode="json") == expected


@pytest.mark.parametrize(
    "json_text",
    [
        "1.850000000000000001",  # a float would round it to 1.85
        '"1.850000000000000001"',
        "1.005",
        '"1.005"',
        "1e1",  # exponents, however written
        '"1e1"',
        "1.0e1",
        '"1E+1"',
        '" 1.50 "',  # no surrounding spaces
        '"1.50 "',
        '"1_000"',  # no underscores
        '"+1.50"',  # no sign
        '"-1.50"',
        "-1.50",
        '"01.50"',  # no leading zeros, as in a JSON number
        '".5"',
        '"5."',
        '"1,50"',
        '"١٫٥"',  # digits of other scripts
        '"1.5\\n"',
        '"0"',
        '"0.00"',
        "0",
        "0.0",
        '"10000000000"',
        "10000000000.00",
        '"NaN"',
        '"Infinity"',
        '""',
        "true",
        "null",
        "[1]",
    ],
)
def test_money_not_written_as_a_plain_positive_decimal_of_whole_cents_is_invalid(
    json_text: str,
) -> None:
    with pytest.raises(ValidationError):
        _read_money(json_text)


def test_money_never_takes_a_binary_float() -> None:
    # A float has already lost the digits the client wrote: the gateway never produces one.
    with pytest.raises(ValidationError, match="JSON string or number"):
        money_type.validate_python(1.85)


def test_money_inside_the_program_is_a_decimal() -> None:
    assert money_type.validate_python(Decimal("2.5")) == Decimal("2.50")


def test_the_json_schema_gives_money_exactly() -> None:
    text, number = money_type.json_schema(mode="validation")["anyOf"]
    assert text == {"type": "string", "pattern": MONEY_PATTERN}
    limits = ("exclusiveMinimum", "maximum", "multipleOf")
    assert [number["type"], *(number[limit] for limit in limits)] == [
        "number", 0, float(MAX_MONEY), 0.01
    ]  # fmt: skip
    assert money_type.json_schema(mode="serialization") == {
        "type": "string",
        "pattern": MONEY_OUT_PATTERN,
    }


@FAST
@given(text=st.from_regex(MONEY_PATTERN, fullmatch=True))
def test_every_money_text_the_pattern_admits_is_accepted(text: str) -> None:
    assert money_type.validate_python(text) == Decimal(text)


@FAST
@given(text=st.text(alphabet="0123456789.-+eE_ ", max_size=15) | st.from_regex(r"[0-9.]{1,14}"))
def test_money_text_is_accepted_exactly_when_the_pattern_admits_it(text: str) -> None:
    admitted = re.fullmatch(MONEY_PATTERN, text) is not None
    try:
        money_type.validate_python(text)
    except ValidationError:
        assert not admitted, text
    else:
        assert admitted, text


@pytest.mark.parametrize("command", APPS)
def test_every_route_that_takes_a_body_reads_it_exactly(command: str) -> None:
    contexts = iter_route_contexts(load(command).routes)
    routes = [c.original_route for c in contexts if isinstance(c.original_route, APIRoute)]
    with_body = [route for route in routes if route.body_field is not None]
    assert with_body, "no route takes a body: is this the right app?"
    assert [r.path for r in with_body if not isinstance(r, ExactJSONRoute)] == []


@pytest.mark.parametrize("command", APPS)
def test_the_openapi_document_lists_413_on_exactly_the_calls_that_take_a_body(
    command: str,
) -> None:
    operations = [
        operation
        for path in load(command).openapi()["paths"].values()
        for operation in path.values()
    ]
    for operation in operations:
        assert ("413" in operation["responses"]) == ("requestBody" in operation), operation


# --- Names --------------------------------------------------------------------------------

team_name = TypeAdapter(Name)
event_type = TypeAdapter(EventType)


def test_the_whitespace_a_name_may_not_consist_of_is_what_python_strips() -> None:
    spaces = {chr(point) for point in range(sys.maxunicode + 1) if chr(point).isspace()}
    assert {c for c in spaces if re.fullmatch(f"[{WHITESPACE}]", c)} == spaces
    assert re.fullmatch(f"[{WHITESPACE}]+", "".join(sorted(spaces)))
    assert not re.search(f"[{WHITESPACE}]", "".join(map(chr, range(0x21, 0x7F))))


@pytest.mark.parametrize("text", ["", " ", "\t\n", "\u3000", "\x1c", "\xa0\u2003"])
def test_a_blank_name_or_type_is_invalid(text: str) -> None:
    with pytest.raises(ValidationError):
        team_name.validate_python(text)
    with pytest.raises(ValidationError):
        event_type.validate_python(text)


@pytest.mark.parametrize("text", ["Ajax\x00", "\x00"])
def test_a_name_with_a_nul_character_is_invalid(text: str) -> None:
    with pytest.raises(ValidationError, match="NUL"):
        team_name.validate_python(text)


def test_a_team_name_is_trimmed_and_at_most_128_characters_as_sent() -> None:
    assert team_name.validate_python("\u3000 Ajax \t") == "Ajax"
    assert team_name.validate_python("x" * 128) == "x" * 128
    with pytest.raises(ValidationError):
        team_name.validate_python("Ajax" + " " * 125)  # 129 as sent, whatever trimming leaves


@pytest.mark.parametrize(("adapter", "longest"), [(team_name, 128), (event_type, 64)])
def test_the_json_schema_of_a_name_states_what_the_server_accepts(
    adapter: TypeAdapter[str], longest: int
) -> None:
    assert adapter.json_schema() == {
        "type": "string",
        "minLength": 1,
        "maxLength": longest,
        "pattern": TEXT_PATTERN,
    }


@FAST
@given(text=st.text(alphabet=st.sampled_from(" \t\x00\x1c\u3000aé"), max_size=6) | st.text())
def test_a_name_is_accepted_exactly_when_its_schema_admits_it(text: str) -> None:
    admitted = 1 <= len(text) <= 128 and re.fullmatch(TEXT_PATTERN, text) is not None
    try:
        team_name.validate_python(text)
    except ValidationError:
        assert not admitted, repr(text)
    else:
        assert admitted, repr(text)


def test_a_change_to_an_event_is_documented_without_nulls_and_never_empty() -> None:
    schema = EventUpdate.model_json_schema()
    assert '"null"' not in json.dumps(schema)
    assert schema["minProperties"] == 1


@pytest.mark.parametrize("command", APPS)
def test_the_openapi_document_states_the_body_limit_and_the_405_rule(command: str) -> None:
    app = load(command)
    description = app.openapi()["info"]["description"]
    assert description.count(EDGE_RULES) == 1
    assert app.openapi()["info"]["description"] == description  # stated once, however often built
