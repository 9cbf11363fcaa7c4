"""Reading the bet stream's log (`bet_changes`): cursors, filters and pages of changes.

Each entry of the log is one transaction's changes; a change is known by its cursor
`<xid>-<seq>-<position>`. Entries are read in (xid, seq) order and only once their
transaction can no longer be running: an entry whose xid is below the snapshot's xmin
(`pg_snapshot_xmin(pg_current_snapshot())`) belongs to a transaction that has ended, and
no entry with a smaller xid can commit after it. So a reader that has passed a cursor never
finds a change behind it later (docs/DESIGN.md, "The bet stream").
"""

import re
import uuid
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from sqlalchemy import ColumnElement, bindparam, literal_column, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY, BIGINT, INTEGER, TEXT, UUID
from sqlmodel import Session

from betting.db import payout_sql
from betting.models import BetPublic

CURSOR_PATTERN = r"^[0-9]{1,19}-[0-9]{1,19}-[0-9]{1,10}$"
"""A cursor as the stream sends it in an event's `id`: three numbers."""
_CURSOR = re.compile(CURSOR_PATTERN)
_BIGINT = 2**63 - 1


@dataclass(frozen=True, order=True)
class Cursor:
    """A place in the log: after change `pos` (1-based) of entry (`xid`, `seq`)."""

    xid: int
    seq: int
    pos: int

    END: ClassVar[int] = 2**31 - 1
    """The position after an entry's last change: the whole entry is behind the cursor."""

    @classmethod
    def parse(cls, text: str) -> Self:
        """A cursor as the stream sent it (an event's `id`); `ValueError` if it is not one.

        Numbers past any the log can hold stand for its end: nothing comes before them.
        """
        if _CURSOR.fullmatch(text) is None:
            raise ValueError(f"not a bet stream cursor: {text!r}")
        xid, seq, pos = (int(part) for part in text.split("-"))
        return cls(min(xid, _BIGINT), min(seq, _BIGINT), min(pos, cls.END))

    def __str__(self) -> str:
        return f"{self.xid}-{self.seq}-{self.pos}"


ORIGIN = Cursor(0, 0, 0)
"""Before every entry."""


@dataclass(frozen=True)
class Interest:
    """Whose bets a subscriber sees: one user's, one event's, both, or (neither) all."""

    user_id: str | None = None
    event_id: uuid.UUID | None = None

    def matches(self, user_id: str, event_id: uuid.UUID) -> bool:
        return (self.user_id is None or self.user_id == user_id) and (
            self.event_id is None or self.event_id == event_id
        )


@dataclass(frozen=True)
class Selection:
    """What one read fetches: every change, or those of some users or some events.

    A superset of what the subscribers want (`Interest.matches` decides exactly), small
    enough for Postgres to filter the log before it looks at a single bet.
    """

    everything: bool = False
    users: frozenset[str] = frozenset()
    events: frozenset[uuid.UUID] = frozenset()

    @classmethod
    def of(cls, interests: list[Interest]) -> Self:
        if any(i.user_id is None and i.event_id is None for i in interests):
            return cls(everything=True)
        return cls(
            users=frozenset(i.user_id for i in interests if i.user_id is not None),
            events=frozenset(
                i.event_id for i in interests if i.user_id is None and i.event_id is not None
            ),
        )

    @property
    def nothing(self) -> bool:
        return not (self.everything or self.users or self.events)


@dataclass(frozen=True)
class Change:
    """One change of a bet's state: whose bet, of which event, and the bet as it was right
    after it, as JSON (`BET_JSON_SQL`)."""

    cursor: Cursor
    user_id: str
    event_id: uuid.UUID
    data: str


@dataclass(frozen=True)
class Page:
    changes: list[Change]
    scanned_to: Cursor
    """Every change up to here has been considered; read on from here."""
    more: bool
    """Readable entries remain past `scanned_to`: read again at once."""
    pending: bool
    """Entries exist that cannot be read yet: an older transaction is still running."""


# Entries in order from a cursor's, each marked readable when its transaction has ended.
_ENTRIES = text("""
    SELECT c.xid, c.seq, cardinality(c.bet_ids) AS size,
           c.xid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS readable
    FROM bet_changes c
    WHERE (c.xid, c.seq) >= (:xid, :seq)
    ORDER BY c.xid, c.seq
    LIMIT :limit
""")


def _utc(timestamp: str) -> str:
    """SQL: a `timestamptz` as pydantic writes a UTC datetime: `…T07:00:00Z`, or with six
    fractional digits when it has any."""
    utc = f"({timestamp}) AT TIME ZONE 'UTC'"
    return (
        f"""'"' || to_char({utc}, 'YYYY-MM-DD"T"HH24\\:MI\\:SS') || CASE WHEN """
        f"""date_trunc('second', {utc}) = {utc} THEN '' ELSE to_char({utc}, '.US') END """
        """|| 'Z"'"""
    )


def _money(amount: str) -> str:
    """SQL: an amount as `BetPublic` writes it, `"10.00"`, or `null`."""
    return f"""coalesce('"' || round({amount}, 2)::text || '"', 'null')"""


def _literal(expression: ColumnElement[Any]) -> str:
    compiled = expression.compile(
        dialect=postgresql.dialect(),  # type: ignore[no-untyped-call]
        compile_kwargs={"literal_binds": True},
    )
    return str(compiled).replace(":", "\\:")


# Each field of `BetPublic`, in its order, as SQL over a change `x` and its bet `b`: the bet
# as `GET /bets/{id}` shows it right after the change (its fixed fields, and the state, payout
# and time the change gave it). Postgres writes the event's JSON, so the feed only frames it:
# building and serialising a model per change was most of the feed's time with many
# subscribers. `tests/api/test_stream.py` holds it to `BetPublic`'s own JSON, byte for byte.
_BET_JSON_FIELDS = {
    "id": "to_json(x.bet_id)::text",
    "user_id": "to_json(x.user_id)::text",
    "event_id": "to_json(x.event_id)::text",
    "market": "to_json(b.market)::text",
    "amount": _money("b.amount"),
    "odds": _money("b.odds"),
    "potential_payout": _money("b.potential_payout"),
    "payout": _money(
        _literal(
            payout_sql(
                literal_column("x.state"),
                amount=literal_column("b.amount"),
                potential=literal_column("b.potential_payout"),
            )
        )
    ),
    "state": "to_json(x.state)::text",
    "date_created": _utc("b.date_created"),
    "updated_at": _utc("x.at"),
}
assert list(_BET_JSON_FIELDS) == list(BetPublic.model_fields), "the stream shows what GET shows"
BET_JSON_SQL = (
    "'{' || "
    + " || ',' || ".join(
        f"""'"{name}"\\:' || {expression}""" for name, expression in _BET_JSON_FIELDS.items()
    )
    + " || '}'"
)
"""SQL over a change `x` and its bet `b`: the bet's JSON as `GET /bets/{id}` sends it."""

# The selected changes in windows [lo, hi] of given entries, with the bets they belong to.
# Only array slices are unnested, so each change is read once however the windows fall.
_CHANGES = text(f"""
    SELECT w.xid, w.seq, w.lo + x.n - 1 AS pos, x.user_id, x.event_id, {BET_JSON_SQL} AS data
    FROM unnest(:xids, :seqs, :los, :his) AS w(xid, seq, lo, hi)
    JOIN bet_changes c ON (c.xid, c.seq) = (w.xid, w.seq)
    CROSS JOIN LATERAL unnest(
        c.bet_ids[w.lo:w.hi], c.user_ids[w.lo:w.hi], c.event_ids[w.lo:w.hi],
        c.states[w.lo:w.hi], c.times[w.lo:w.hi]
    ) WITH ORDINALITY AS x(bet_id, user_id, event_id, state, at, n)
    JOIN bets b ON b.id = x.bet_id
    WHERE :everything OR x.user_id = ANY(:users) OR x.event_id = ANY(:events)
    ORDER BY w.xid, w.seq, x.n
""").bindparams(
    bindparam("xids", type_=ARRAY(BIGINT)),
    bindparam("seqs", type_=ARRAY(BIGINT)),
    bindparam("los", type_=ARRAY(INTEGER)),
    bindparam("his", type_=ARRAY(INTEGER)),
    bindparam("users", type_=ARRAY(TEXT)),
    bindparam("events", type_=ARRAY(UUID(as_uuid=True))),
)

_HEAD = text("""
    SELECT c.xid, c.seq FROM bet_changes c
    WHERE c.xid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint
    ORDER BY c.xid DESC, c.seq DESC
    LIMIT 1
""")

# Entries looked at per read, and changes per read: what bounds a page's memory.
MAX_ENTRIES = 1000
DEFAULT_WINDOW = 2000


def read_head(*, session: Session) -> Cursor:
    """Past every change that can be read now: where a new subscriber starts."""
    row = session.execute(_HEAD).first()
    return ORIGIN if row is None else Cursor(row.xid, row.seq, Cursor.END)


@dataclass(frozen=True)
class _Window:
    xid: int
    seq: int
    lo: int
    hi: int


def _windows(
    entries: list[tuple[int, int, int]], after: Cursor, upto: Cursor | None, budget: int
) -> tuple[list[_Window], Cursor, bool]:
    """The position ranges to read after `after` (at most `budget` changes, none past
    `upto`), how far they reach, and whether the budget cut them short."""
    windows: list[_Window] = []
    reached = after
    for xid, seq, size in entries:
        lo = after.pos + 1 if (xid, seq) == (after.xid, after.seq) else 1
        hi = size
        if upto is not None and (xid, seq) == (upto.xid, upto.seq):
            hi = min(hi, upto.pos)
        if hi - lo + 1 > budget:
            hi, cut = lo + budget - 1, True
        else:
            cut = False
        if lo <= hi:
            windows.append(_Window(xid, seq, lo, hi))
            budget -= hi - lo + 1
        reached = max(reached, Cursor(xid, seq, Cursor.END if hi >= size else hi))
        if cut or budget == 0:
            return windows, reached, True
    return windows, reached, False


def read_changes(
    *,
    session: Session,
    after: Cursor,
    selection: Selection,
    upto: Cursor | None = None,
    window: int = DEFAULT_WINDOW,
) -> Page:
    """The selected changes after `after` (and not past `upto`), in log order, at most
    `window` positions of the log at a time."""
    rows = session.execute(
        _ENTRIES, {"xid": after.xid, "seq": after.seq, "limit": MAX_ENTRIES}
    ).all()
    readable = []
    for row in rows:
        if not row.readable:
            break
        if upto is not None and (row.xid, row.seq) > (upto.xid, upto.seq):
            break
        readable.append((row.xid, row.seq, row.size))
    pending = len(readable) < len(rows) and (upto is None or not rows[len(readable)].readable)
    windows, reached, cut = _windows(readable, after, upto, window)
    more = cut or (len(rows) == MAX_ENTRIES == len(readable))
    if upto is not None and not more:
        # Everything up to `upto` has been considered, even entries pruned meanwhile.
        reached = max(reached, upto)
    changes = [] if selection.nothing or not windows else _fetch(session, windows, selection)
    return Page(changes, reached, more, pending)


def _fetch(session: Session, windows: list[_Window], selection: Selection) -> list[Change]:
    rows = session.execute(
        _CHANGES,
        {
            "xids": [w.xid for w in windows],
            "seqs": [w.seq for w in windows],
            "los": [w.lo for w in windows],
            "his": [w.hi for w in windows],
            "everything": selection.everything,
            "users": sorted(selection.users),
            "events": sorted(selection.events),
        },
    )
    return [
        Change(Cursor(row.xid, row.seq, row.pos), row.user_id, row.event_id, row.data)
        for row in rows
    ]


def prune(*, session: Session, older_than_s: float) -> int:
    """Forget entries recorded more than `older_than_s` ago; return how many."""
    result = session.execute(
        text("DELETE FROM bet_changes WHERE recorded_at < now() - make_interval(secs => :age)"),
        {"age": older_than_s},
    )
    session.commit()
    return int(getattr(result, "rowcount", 0))
