"""Apply `events.taxonomy` messages to the events table, in log order, idempotently."""

import uuid

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import Session, col

from betting.db import PROGRESS_CHANNEL, has_bets
from betting.domain import (
    DomainError,
    apply_changes,
    changed_fields,
    check_teams_kept,
    moves_bets,
    new_event,
)
from betting.messages import EventCreated, EventUpdated, decode_event
from betting.models import Event, LogProgress
from betting.streams import LogRecord, Rejected, decode_all


def _key_text(key: bytes | str | None) -> str | None:
    return key.decode(errors="replace") if isinstance(key, bytes) else key


def apply_event_messages(
    *, session: Session, topic: str, records: list[LogRecord]
) -> list[Rejected]:
    """Apply one partition's `records` (in log order); return those that must not be.

    A message whose offset is not newer than the row's `version` is a duplicate or a replay
    and changes nothing. The partition's progress is recorded in the same transaction, so the
    scorer can wait for it.
    """
    decoded, rejected = decode_all(records, decode_event)
    parsed: list[tuple[LogRecord, EventCreated | EventUpdated]] = []
    for record, message in decoded:
        # Per-event order holds only if every message about the event is keyed by its id.
        if _key_text(record.key) != str(message.event_id):
            rejected.append(Rejected(record, "message key is not the event id"))
        else:
            parsed.append((record, message))

    rows = _lock_events(session, {message.event_id for _, message in parsed})
    for record, message in parsed:
        reason = _apply(session, rows, record.offset, message)
        if reason is not None:
            rejected.append(Rejected(record, reason))

    if records:
        _record_progress(session, topic, records[-1].partition, records[-1].offset)
    return rejected


def _lock_events(session: Session, ids: set[uuid.UUID]) -> dict[uuid.UUID, Event]:
    # Locking in id order keeps concurrent writers from deadlocking on each other.
    query = select(Event).where(col(Event.id).in_(ids)).order_by(col(Event.id)).with_for_update()
    return {row.id: row for row in session.scalars(query)}


def _apply(
    session: Session,
    rows: dict[uuid.UUID, Event],
    offset: int,
    message: EventCreated | EventUpdated,
) -> str | None:
    """Apply one message; return why it must not be applied, or None."""
    row = rows.get(message.event_id)
    if row is not None and row.version >= offset:
        return None  # already applied: a duplicate or a replay
    if isinstance(message, EventCreated):
        if row is not None:
            return "an event with this id already exists"
        try:
            facts = new_event(message.event.to_facts())
        except DomainError as exc:
            return str(exc)
        new_row = Event.from_facts(message.event_id, facts, version=offset, at=message.sent_at)
        row = _insert_event(session, new_row)
        rows[row.id] = row
        # Ours (version == offset), or another writer's copy of this very message.
        return None if row.version >= offset else "an event with this id already exists"
    if row is None or row.deleted_at is not None:
        return "unknown event"
    current = row.to_facts()
    try:
        updated = apply_changes(current, message.changes.to_changes())
        changed = changed_fields(current, updated)
        # The row is locked FOR UPDATE and placements hold it FOR SHARE: no bet can land
        # between this look and the commit.
        check_teams_kept(changed, has_bets=lambda: has_bets(session, row.id))
    except DomainError as exc:
        return str(exc)
    if moves_bets(changed):
        row.score_version = offset
    row.set_facts(updated)
    row.version = offset
    row.updated_at = message.sent_at
    return None


def _insert_event(session: Session, row: Event) -> Event:
    """Insert `row` unless the event exists; return the stored row, locked.

    Two writers overlap while a partition moves between them (a rebalance): both may apply
    the same batch. The second insert waits for the first writer's transaction, then finds
    the row there instead of failing the batch; the caller compares versions as for any row.
    """
    values = {name: getattr(row, name) for name in Event.model_fields}
    session.execute(insert(Event).values(values).on_conflict_do_nothing(index_elements=["id"]))
    query = select(Event).where(col(Event.id) == row.id).with_for_update()
    return session.scalars(query, execution_options={"populate_existing": True}).one()


def _record_progress(session: Session, topic: str, partition: int, offset: int) -> None:
    statement = insert(LogProgress).values(topic=topic, partition=partition, applied_offset=offset)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["topic", "partition"],
            set_={
                "applied_offset": func.greatest(
                    LogProgress.applied_offset, statement.excluded.applied_offset
                )
            },
        )
    )
    # Delivered only when this transaction commits: it wakes the scorer waiting for it.
    session.execute(select(func.pg_notify(PROGRESS_CHANNEL, f"{topic}:{partition}:{offset}")))
