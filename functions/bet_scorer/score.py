"""Turn an event change into one `BetScored` per bet whose state must change."""

import logging
import select as select_fd
import time
import uuid
from collections.abc import Iterator
from typing import Any, NamedTuple
from typing import cast as typed

import psycopg2
from sqlalchemy import Text, cast
from sqlmodel import Session, col, select

from betting import topics
from betting.db import PROGRESS_CHANNEL, get_engine, stale_bets
from betting.domain import moves_bets
from betting.kafka import client_config
from betting.messages import EventUpdated, decode_event, encode_bet_scored
from betting.models import Bet, Event, LogIncarnation, LogProgress
from betting.settings import get_settings
from betting.streams import try_decode

log = logging.getLogger(__name__)


class EventWriterBehind(TimeoutError):
    """The event writer did not reach a message's position in time."""


class ProgressWatcher:
    """Waits until the event writer has applied a partition up to a given offset.

    The event writer notifies `PROGRESS_CHANNEL` in the transaction that records its progress,
    and Postgres delivers that only once it commits; so the watcher sleeps on a listening
    connection and wakes as soon as the progress it waits for is readable. Each wake-up (or
    every `FALLBACK_POLL_S` without one) reads `log_progress` again in a fresh snapshot, so a
    lost notification or listening connection only costs time, never correctness.
    """

    FALLBACK_POLL_S = 0.25

    def __init__(self, timeout_s: float, topic: str = topics.EVENTS) -> None:
        self._timeout_s = timeout_s
        self._topic = topic
        # Progress only grows within one incarnation of the log, so what was seen once need
        # not be read again; a new incarnation starts from nothing (docs/DESIGN.md, rule 8).
        self._seen: dict[tuple[str, int], int] = {}
        self._listener: Any = None  # a psycopg2 connection LISTENing, opened on first use

    def wait(self, session: Session, partition: int, offset: int, incarnation: str) -> None:
        """Return once the event writer has applied `partition` up to `offset` of the log's
        `incarnation`: progress recorded for another incarnation does not count."""
        deadline = time.monotonic() + self._timeout_s
        seen = (incarnation, partition)
        # LISTEN before the first look: a commit between the look and the sleep still wakes it.
        self._listen()
        while self._seen.get(seen, -1) < offset:
            applied = session.exec(
                select(LogProgress.applied_offset)
                .join(LogIncarnation, col(LogIncarnation.topic) == col(LogProgress.topic))
                .where(
                    col(LogProgress.topic) == self._topic,
                    col(LogProgress.partition) == partition,
                    col(LogIncarnation.incarnation) == incarnation,
                )
            ).first()
            session.rollback()  # a fresh snapshot for the next look
            self._seen[seen] = -1 if applied is None else applied
            if self._seen[seen] >= offset:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise EventWriterBehind(
                    f"event writer has not reached {self._topic}[{partition}]@{offset}"
                )
            self._sleep(min(remaining, self.FALLBACK_POLL_S))

    def _listen(self) -> None:
        if self._listener is not None:
            return
        try:
            url = get_engine().url.set(drivername="postgresql")
            listener = psycopg2.connect(
                url.render_as_string(hide_password=False), connect_timeout=5
            )
            listener.set_session(autocommit=True)
            with listener.cursor() as cursor:
                cursor.execute(f"LISTEN {PROGRESS_CHANNEL}")
        except psycopg2.Error as exc:
            log.warning("cannot listen for progress, polling instead: %s", exc)
            return
        self._listener = listener

    def _sleep(self, timeout_s: float) -> None:
        """Until a notification arrives (its payload is only a hint) or `timeout_s` passes."""
        if self._listener is None:
            time.sleep(timeout_s)
            self._listen()
            return
        try:
            if select_fd.select([self._listener], [], [], timeout_s)[0]:
                self._listener.poll()
                self._listener.notifies.clear()
        except (OSError, psycopg2.Error) as exc:
            log.warning("progress listener lost, polling until it is back: %s", exc)
            self._listener.close()
            self._listener = None


class ScoredBet(NamedTuple):
    """One record for `bets.state`: the bet id (its key) and its encoded `BetScored`."""

    key: str
    value: bytes


def bets_to_rescore(*, session: Session, event_id: uuid.UUID) -> Iterator[ScoredBet]:
    """Stream the bets of `event_id` whose state differs from what its score says.

    One query per market, in the database, over the (event_id, market, state) index; rows
    arrive in chunks from a server-side cursor, so memory does not grow with the bet count.
    Ids come as text and records are encoded directly: no model or UUID object per bet.
    """
    event = session.get(Event, event_id)
    if event is None or event.deleted_at is not None:
        return
    fetch = get_settings().scorer_fetch_size
    event_text, version = str(event_id), event.score_version
    connection = session.connection()
    # The driver's own server-side cursor, not SQLAlchemy's rows: per bet, the row machinery
    # was a quarter of the scorer's samples (py-spy, 100k settlement). The statement is
    # rendered with its values inline; they are the event's id and the domain's names.
    driver = typed(psycopg2.extensions.connection, connection.connection.dbapi_connection)
    for n, stale in enumerate(stale_bets(event_id, event.to_facts())):
        query = select(cast(col(Bet.id), Text)).where(stale.where)
        sql = str(query.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True}))
        target = stale.target
        with driver.cursor(name=f"rescore_{n}") as cursor:
            cursor.itersize = fetch
            cursor.execute(sql)
            for (bet_id,) in cursor:
                yield ScoredBet(bet_id, encode_bet_scored(bet_id, event_text, target, version))


class Scorer:
    """The scorer's step: parse, wait for the event writer, stream the bet updates."""

    def __init__(self) -> None:
        self._progress = ProgressWatcher(get_settings().scorer_wait_timeout_s)

    def __call__(self, value: bytes | None, partition: int, offset: int) -> Iterator[ScoredBet]:
        message = try_decode(decode_event, value)
        if isinstance(message, str):
            # The event writer dead-letters it; nothing here can score it.
            log.info("skipping %s[%d]@%d: %s", topics.EVENTS, partition, offset, message)
            return
        # A new event has no bets yet; an update moves them only if it sends a scoring input.
        if not isinstance(message, EventUpdated) or not moves_bets(
            message.changes.model_fields_set
        ):
            return
        with Session(get_engine()) as session:
            # Which log this message is in: positions of another one say nothing about it.
            incarnation = topics.incarnation(client_config(get_settings()), topics.EVENTS)
            # docs/DESIGN.md, rule 3: every bet accepted before this change is committed once
            # the event row has it, and no bet is accepted after it.
            self._progress.wait(session, partition, offset, incarnation)
            yield from bets_to_rescore(session=session, event_id=message.event_id)
