"""The bet stream's parts that need no server: cursors, paging the log, subscriber queues."""

import asyncio
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.changes import ORIGIN, Cursor, Interest, Selection, _windows
from gateway.feed import BATCH, KEEP_ALIVE, TOO_SLOW, Subscriber
from tests.unit.strategies import FAST

cursors = st.builds(
    Cursor,
    st.integers(0, 2**63 - 1),
    st.integers(0, 2**63 - 1),
    st.integers(0, Cursor.END),
)


@FAST
@given(cursors)
def test_a_cursor_reads_back_as_itself(cursor: Cursor) -> None:
    assert Cursor.parse(str(cursor)) == cursor


def test_cursors_order_by_transaction_then_entry_then_position() -> None:
    assert Cursor(1, 9, 9) < Cursor(2, 1, 1) < Cursor(2, 2, 1) < Cursor(2, 2, 2)
    assert Cursor(1, 1, 1) > ORIGIN


@pytest.mark.parametrize(
    "text", ["", "1-2", "a-b-c", "1-2-3-4", "-1-2-3", " 1-2-3", "1-2-12345678901"]
)
def test_anything_else_is_not_a_cursor(text: str) -> None:
    with pytest.raises(ValueError, match="not a bet stream cursor"):
        Cursor.parse(text)


def test_a_cursor_past_anything_the_log_can_hold_stands_for_its_end() -> None:
    assert Cursor.parse(f"{10**19 - 1}-{2**63}-2147483648") == Cursor(
        2**63 - 1, 2**63 - 1, Cursor.END
    )


entry_sizes = st.lists(st.integers(1, 12), min_size=1, max_size=8)


@FAST
@given(entry_sizes, st.integers(1, 10))
def test_paging_reads_every_change_once_in_order(sizes: list[int], budget: int) -> None:
    entries = [(100 + n, n + 1, size) for n, size in enumerate(sizes)]
    read: list[tuple[int, int, int]] = []
    after, more = ORIGIN, True
    while more:
        windows, reached, more = _windows(entries, after, None, budget)
        assert sum(w.hi - w.lo + 1 for w in windows) <= budget
        read += [(w.xid, w.seq, pos) for w in windows for pos in range(w.lo, w.hi + 1)]
        assert reached > after or not windows
        after = reached
        entries = [e for e in entries if (e[0], e[1]) >= (after.xid, after.seq)]

    assert read == [(x, s, pos) for x, s, size in [(100 + n, n + 1, size) for n, size in
                    enumerate(sizes)] for pos in range(1, size + 1)]  # fmt: skip
    assert after == Cursor(100 + len(sizes) - 1, len(sizes), Cursor.END)


def test_paging_stops_at_the_upper_bound_inside_an_entry() -> None:
    entries = [(7, 1, 5), (8, 2, 5)]

    windows, reached, more = _windows(entries, Cursor(7, 1, 2), Cursor(8, 2, 3), budget=100)

    assert [(w.xid, w.seq, w.lo, w.hi) for w in windows] == [(7, 1, 3, 5), (8, 2, 1, 3)]
    assert (reached, more) == (Cursor(8, 2, 3), False)


def test_a_selection_covers_every_subscribers_interest() -> None:
    event = uuid.uuid4()
    players = [Interest(user_id="ana"), Interest(user_id="ben", event_id=event)]

    assert Selection.of(players) == Selection(users=frozenset({"ana", "ben"}))
    assert Selection.of([*players, Interest(event_id=event)]).events == frozenset({event})
    assert Selection.of([*players, Interest()]).everything
    assert Selection.of([]).nothing


async def _drain(subscriber: Subscriber) -> list[bytes]:
    """Every send the subscriber's response makes, once it has been closed."""
    return [batch async for batch in subscriber.batches()]


def test_a_subscriber_that_falls_too_far_behind_is_dropped_with_a_final_comment() -> None:
    subscriber = Subscriber(Interest(user_id="ana"), ORIGIN, capacity=2)

    accepted = [subscriber.offer(Cursor(1, 1, n), b"change %d" % n) for n in (1, 2, 3)]

    assert accepted == [True, True, False]
    # What was queued is dropped with it: the client resumes from the last id it received.
    assert asyncio.run(_drain(subscriber)) == [TOO_SLOW]
    assert TOO_SLOW.startswith(b": too slow")


def test_a_subscriber_skips_changes_at_or_before_its_cursor() -> None:
    # Room for one: a second change queued would overflow it.
    subscriber = Subscriber(Interest(), Cursor(5, 1, 3), capacity=1)

    accepted = [subscriber.offer(Cursor(5, 1, n), b"change %d" % n) for n in (2, 3, 4, 4)]

    assert accepted == [True, True, True, True]
    assert subscriber.farewell is None


def test_queued_changes_are_sent_together_then_the_farewell() -> None:
    subscriber = Subscriber(Interest(), ORIGIN, capacity=1000)
    changes = [b"change %d;" % n for n in range(BATCH + 1)]

    async def sends() -> list[bytes]:
        for n, chunk in enumerate(changes, start=1):
            assert subscriber.offer(Cursor(1, 1, n), chunk)
        batches = subscriber.batches()
        got = [await anext(batches), await anext(batches)]
        subscriber.close(b"bye")
        return got + [batch async for batch in batches]

    assert asyncio.run(sends()) == [b"".join(changes[:BATCH]), changes[BATCH], b"bye"]


def test_a_subscriber_that_sees_every_bet_takes_a_read_at_once_or_is_dropped() -> None:
    entries = [(Cursor(2, 1, n), b"change %d" % n) for n in (1, 2, 3)]
    roomy = Subscriber(Interest(), Cursor(2, 1, 1), capacity=2)
    cramped = Subscriber(Interest(), ORIGIN, capacity=2)

    assert roomy.offer_all(entries) and roomy.after == Cursor(2, 1, 3)
    assert not cramped.offer_all(entries)
    assert asyncio.run(_drain(cramped)) == [TOO_SLOW]
    assert cramped.offer_all(entries), "a dropped subscriber takes nothing more"


def test_a_keep_alive_goes_only_to_a_subscriber_with_nothing_waiting() -> None:
    idle = Subscriber(Interest(), ORIGIN, capacity=10)
    busy = Subscriber(Interest(), ORIGIN, capacity=10)
    busy.offer(Cursor(1, 1, 1), b"change")

    async def first_send(subscriber: Subscriber) -> bytes:
        subscriber.keep_alive()
        return await anext(subscriber.batches())

    assert asyncio.run(first_send(idle)) == KEEP_ALIVE
    assert asyncio.run(first_send(busy)) == b"change"
    assert KEEP_ALIVE.startswith(b":")
