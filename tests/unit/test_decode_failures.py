"""Any failure to decode a message makes it a bad message, never a crash: the writers
dead-letter it and the scorer skips it (DESIGN.md rule 4), whatever the decoder raised."""

import pytest

from betting.streams import LogRecord, decode_all
from functions.bet_scorer import score
from functions.bet_scorer.score import Scorer

FAILURES = [
    pytest.param(ValueError("bad"), id="value-error"),
    pytest.param(OverflowError("date value out of range"), id="overflow"),
    pytest.param(RecursionError("maximum recursion depth exceeded"), id="recursion"),
    pytest.param(TypeError("unhashable"), id="type-error"),
    pytest.param(UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), id="unicode"),
]


def _record(offset: int) -> LogRecord:
    return LogRecord(partition=0, offset=offset, timestamp_ms=0, key=b"k", value=b"{}")


@pytest.mark.parametrize("failure", FAILURES)
def test_a_message_the_decoder_fails_on_is_rejected_with_the_reason(failure: Exception) -> None:
    def decode(raw: bytes | None) -> int:
        if raw == b"{}":
            raise failure
        return 1

    good = LogRecord(partition=0, offset=2, timestamp_ms=0, key=b"k", value=b"1")
    parsed, rejected = decode_all([_record(1), good], decode)

    assert parsed == [(good, 1)]
    assert [item.record.offset for item in rejected] == [1]
    assert str(failure) in rejected[0].reason


@pytest.mark.parametrize("failure", FAILURES)
def test_the_scorer_skips_a_message_the_decoder_fails_on(
    failure: Exception, monkeypatch: pytest.MonkeyPatch
) -> None:
    def decode(raw: bytes | None) -> None:
        raise failure

    monkeypatch.setattr(score, "decode_event", decode)

    assert list(Scorer()(b"{}", 0, 7)) == []
