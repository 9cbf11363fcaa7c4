"""A function's log watch (betting/log_watch.py) against a real broker of its own: it says
nothing while the topic stays the same or the broker does not answer (paused), says "gone" once
the topic is deleted and "a new log" once it is made again, each within about its interval."""

import os
import signal
import time

from confluent_kafka.admin import AdminClient, NewTopic

from betting import log_watch, topics
from launcher import local

INTERVAL_S = 0.5


def _said_within(said: list[str], timeout_s: float) -> list[str]:
    deadline = time.monotonic() + timeout_s
    while not said and time.monotonic() < deadline:
        time.sleep(0.05)
    return list(said)


def test_the_watch_says_gone_then_new_log_and_nothing_while_the_broker_is_paused(
    own_broker: local.Broker,
) -> None:
    broker = own_broker
    connection = {"bootstrap.servers": broker.address}
    said: list[str] = []
    watch = log_watch.LogWatch(
        connection, [topics.EVENTS], INTERVAL_S, on_change=lambda _, why: said.append(why)
    )
    watch.start()
    try:
        time.sleep(4 * INTERVAL_S)
        assert said == []  # the same topic: nothing to say

        os.kill(broker.pid, signal.SIGSTOP)  # no answer is no news: never a restart
        try:
            time.sleep(3.0)
        finally:
            os.kill(broker.pid, signal.SIGCONT)
        time.sleep(2 * INTERVAL_S)
        assert said == []

        admin = AdminClient(connection)
        for future in admin.delete_topics([topics.EVENTS]).values():
            future.result(timeout=10)
        gone = _said_within(said, 5.0)
        assert gone and gone[0].startswith(f"topic {topics.EVENTS} is gone"), gone

        said.clear()
        new = NewTopic(topics.EVENTS, topics.PARTITIONS, 1, config=topics.shape().config)
        for future in admin.create_topics([new]).values():
            future.result(timeout=10)
        time.sleep(2 * INTERVAL_S)  # the "gone" of the looks before the topic was back
        said.clear()
        again = _said_within(said, 5.0)
        assert again and again[0].startswith(f"topic {topics.EVENTS} is a new log"), again
    finally:
        watch.stop()
