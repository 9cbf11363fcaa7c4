"""Turn an event change into one `BetScored` per bet whose state must change."""

import logging
import time
import uuid
from collections.abc import Iterator

from sqlmodel import Session, col, select

from betting import topics
from betting.db import get_engine, stale_bets
from betting.domain import moves_bets
from betting.messages import BetScored, EventUpdated, decode_event
from betting.models import Bet, Event, LogProgress
from betting.settings import get_settings

log = logging.getLogger(__name__)


class EventWriterBehind(TimeoutError):
    """The event writer did not reach a message's position in time."""


class ProgressWatcher:
    """Waits until the event writer has applied a partition up to a given offset."""

    def __init__(self, timeout_s: float) -> None:
        self._timeout_s = timeout_s
        # Progress only grows, so what was seen once need not be read again.
        self._seen: dict[int, int] = {}

    def wait(self, session: Session, partition: int, offset: int) -> None:
        delay = 0.01
        deadline = time.monotonic() + self._timeout_s
        while self._seen.get(partition, -1) < offset:
            applied = session.exec(
                select(LogProgress.applied_offset).where(
                    col(LogProgress.topic) == topics.EVENTS,
                    col(LogProgress.partition) == partition,
                )
            ).first()
            session.rollback()  # a fresh snapshot for the next look
            self._seen[partition] = -1 if applied is None else applied
            if self._seen[partition] >= offset:
                return
            if time.monotonic() > deadline:
                raise EventWriterBehind(
                    f"event writer has not reached {topics.EVENTS}[{partition}]@{offset}"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.25)


def bets_to_rescore(*, session: Session, event_id: uuid.UUID) -> Iterator[BetScored]:
    """Stream the bets of `event_id` whose state differs from what its score says.

    One query per market, in the database, over the (event_id, market, state) index; rows
    arrive in chunks from a server-side cursor, so memory does not grow with the bet count.
    """
    event = session.get(Event, event_id)
    if event is None or event.deleted_at is not None:
        return
    fetch = get_settings().scorer_fetch_size
    for stale in stale_bets(event_id, event.to_facts()):
        query = select(Bet.id).where(stale.where).execution_options(yield_per=fetch)
        for bet_id in session.exec(query):
            yield BetScored(
                bet_id=bet_id, event_id=event_id, state=stale.target, version=event.score_version
            )


class Scorer:
    """The scorer's step: parse, wait for the event writer, stream the bet updates."""

    def __init__(self) -> None:
        self._progress = ProgressWatcher(get_settings().scorer_wait_timeout_s)

    def __call__(self, value: bytes | None, partition: int, offset: int) -> Iterator[BetScored]:
        try:
            message = decode_event(value)
        except ValueError:
            # The event writer dead-letters it; nothing here can score it.
            log.info("skipping unparseable %s[%d]@%d", topics.EVENTS, partition, offset)
            return
        # A new event has no bets yet; an update moves them only if it sends a scoring input.
        if not isinstance(message, EventUpdated) or not moves_bets(
            message.changes.model_fields_set
        ):
            return
        with Session(get_engine()) as session:
            # docs/DESIGN.md, rule 3: every bet accepted before this change is committed once
            # the event row has it, and no bet is accepted after it.
            self._progress.wait(session, partition, offset)
            yield from bets_to_rescore(session=session, event_id=message.event_id)
