"""A running function's watch on its topics' incarnations (docs/DESIGN.md, rule 8).

A consumer keeps its place in a topic that was deleted and made again (or that a broker which
restarted empty no longer has): librdkafka does not notice, and its old position means nothing
in the new log. So a function asks the broker, every `log_watch_interval_s`, for the topic id of
each topic it uses; when one is not the id it started on, or the topic is gone, the function
exits at once, naming the topic, and its restart (Kubernetes', or any supervisor's) joins the
new log and rebases the store as every start does.

Exiting, not rejoining in place: the consumer, its checkpoint and the sink's batch all hold
positions of the old log, and a graceful stop would commit them into the new one. `os._exit`
commits nothing, like a crash, which the functions survive by design (at-least-once).

Entry points: `start(connection, names)` once, before the consumer subscribes; and, for a
consumer that reads the incarnation for a batch anyway, `confirm(topic, incarnation)` before
applying it, which closes the gap between two looks.
"""

import logging
import os
import sys
import threading
from collections.abc import Callable, Mapping, Sequence

from betting import topics

log = logging.getLogger(__name__)

# The exit status of a function that found its log started over (EX_TEMPFAIL: try again).
EXIT_NEW_LOG = 75
MISSING = "missing"
"""What `look` answers for a topic the broker says it does not have."""


def look(connection: Mapping[str, str], topic: str, timeout_s: float) -> str | None:
    """`topic`'s incarnation now, `MISSING` if the broker lists no such topic, or None if it
    cannot tell (unreachable, paused, or the topic still being made): never a change."""
    try:
        return topics.incarnation(connection, topic, timeout_s)
    except topics.TopicsNotReady:
        pass
    # Describing a deleted topic may fail or time out; listing answers which it was.
    try:
        exists = topics.exists(connection, topic, timeout_s)
    except topics.TopicsNotReady:
        return None
    return None if exists else MISSING


def exit_for_new_log(topic: str, why: str) -> None:
    """End the process now, with a line saying which topic and why, for a restart."""
    log.critical("%s; exiting (status %d) to be restarted on the new log", why, EXIT_NEW_LOG)
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stderr.flush()
    os._exit(EXIT_NEW_LOG)


class LogWatch:
    """The incarnations a function started on, and a thread that compares them with the
    broker's every `interval_s`; `on_change(topic, why)` is called on the first difference."""

    def __init__(
        self,
        connection: Mapping[str, str],
        names: Sequence[str],
        interval_s: float,
        on_change: Callable[[str, str], None] = exit_for_new_log,
    ) -> None:
        self._connection = dict(connection)
        self._interval_s = interval_s
        self._on_change = on_change
        # Raises `TopicsNotReady` if the broker cannot say: a start without a baseline is none.
        self.started = {name: topics.incarnation(connection, name) for name in names}
        self._stop = threading.Event()

    def changed(self, topic: str, now: str | None) -> str | None:
        """Why `now` (an incarnation of `topic`, `MISSING` or None) is a new log, or None."""
        was = self.started.get(topic)
        if was is None or now is None or now == was:
            return None
        if now == MISSING:
            return f"topic {topic} is gone (it was incarnation {was})"
        return f"topic {topic} is a new log: incarnation {now}, started on {was}"

    def confirm(self, topic: str, now: str | None) -> None:
        """Call `on_change` if `now` is not the incarnation `topic` started on."""
        why = self.changed(topic, now)
        if why is not None:
            self._on_change(topic, why)

    def check(self) -> None:
        """One look at every topic (each bounded by the interval, at least 1 s)."""
        timeout_s = max(self._interval_s, 1.0)
        for topic in self.started:
            self.confirm(topic, look(self._connection, topic, timeout_s))

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, name="log-watch", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self.check()
            except Exception:  # a watch that died would leave the function blind again
                log.exception("watching the topics' incarnations failed; looking again")


_running: LogWatch | None = None


def start(connection: Mapping[str, str], names: Sequence[str], interval_s: float) -> LogWatch:
    """Watch `names` from now on, in a daemon thread; the process exits when one is a new
    log or gone. Call it before the consumer subscribes, so the ids it starts on are not
    newer than the log the consumer joins."""
    global _running
    watch = LogWatch(connection, names, interval_s)
    watch.start()
    _running = watch
    return watch


def confirm(topic: str, incarnation: str) -> None:
    """Exit now if `incarnation`, just read from the broker for a batch of `topic`, is not the
    one this process started on (no-op for a topic not watched)."""
    if _running is not None:
        _running.confirm(topic, incarnation)


def stop() -> None:
    """Stop the watch `start` began (a process that builds a function without running it)."""
    global _running
    if _running is not None:
        _running.stop()
        _running = None
