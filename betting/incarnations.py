"""What each topic's new incarnation makes the store forget (docs/DESIGN.md, "The rebase"),
and adopting one: the one place that knows both the topics and the rebases."""

from collections.abc import Callable
from functools import partial

from sqlmodel import Session

from betting import topics
from betting.db import adopt_log, rebase_versions, settle_lost_updates

REBASES: dict[str, Callable[[Session], None]] = {
    topics.EVENTS: partial(rebase_versions, topic=topics.EVENTS),
    # Bet updates carry the event's score_version, not an offset: only what was lost matters.
    topics.BETS: settle_lost_updates,
}


def adopt(session: Session, topic: str, incarnation: str, *, rebase_unknown: bool) -> bool:
    """`betting.db.adopt_log` with `topic`'s rebase; return whether it rebased."""
    return adopt_log(
        session, topic, incarnation, rebase=REBASES[topic], rebase_unknown=rebase_unknown
    )
