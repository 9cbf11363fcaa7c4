"""The log can start over (DESIGN.md rule 8): topics deleted and recreated under a running
system, by `betting setup` or by hand with setup not run (a function sees them first), or the
broker restarted empty. Nobody restarts the functions: each notices on its own that its log
is a new one (or gone) and exits, and a supervisor restarts whatever exited, as Kubernetes
does. A change sent afterwards is applied and scored though its offset is below the versions
stored, and the scorer still waits for the event writer (stopped here while the change
arrives)."""

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from sqlalchemy import Engine, create_engine

from betting import topics
from betting.domain import BetState, EventState, Market, Score
from betting.models import Bet
from launcher import local
from tests.conftest import Stack
from tests.faults.conftest import Supervisor
from tests.integration.conftest import Log, bet_states, wait_for, wait_for_event

pytestmark = pytest.mark.e2e

ODDS = [{"team_1": f"{n}.50", "team_2": "3.00", "draw": "3.00"} for n in range(2, 7)]


@dataclass
class System:
    """The whole pipeline on a broker and a database of its own: its topics can go."""

    stack: Stack
    broker: local.Broker
    env: dict[str, str]
    engine: Engine
    functions: dict[str, local.Component]
    supervisor: Supervisor

    def __post_init__(self) -> None:
        # One client for the test: a future outlives only the client that made it.
        self.admin = AdminClient({"bootstrap.servers": self.broker.address})

    def log(self) -> Log:
        return Log(self.broker.address)

    def setup(self) -> None:
        """`betting setup`, as the Kubernetes Job runs it."""
        setup = local.Component(
            "setup", env=self.env, log_path=self.stack.workdir / "reset-setup.log"
        ).start()
        wait_for(lambda: not setup.running(), 60, "betting setup")
        assert setup.stop() == 0, (self.stack.workdir / "reset-setup.log").read_text()[-2000:]

    def delete_topics(self) -> None:
        for future in self.admin.delete_topics(list(topics.ALL_TOPICS)).values():
            future.result(timeout=10)
        wait_for(lambda: not set(topics.ALL_TOPICS) & self._names(), 30, "topics deleted")

    def create_topics_by_hand(self) -> None:
        """As an operator would with the broker's own tools: `betting setup` is not involved."""
        new = [
            NewTopic(name, topics.PARTITIONS, 1, config=topics.shape().config)
            for name in topics.ALL_TOPICS
        ]
        for future in self.admin.create_topics(new).values():
            future.result(timeout=10)

    def restart_broker_empty(self) -> None:
        self.broker.stop()
        self.broker = local.Broker(self.broker.port).start()

    def _names(self) -> set[str]:
        return set(self.admin.list_topics(timeout=10).topics)

    def logs(self) -> dict[str, str]:
        return {
            name: Path(str(component.log_path)).read_text()
            for name, component in self.functions.items()
        }

    def exits(self) -> dict[str, list[str]]:
        """Each function's lines saying it found its log started over, by function."""
        return {
            name: [line for line in text.splitlines() if "to be restarted on the new log" in line]
            for name, text in self.logs().items()
        }


FUNCTIONS = ("event-writer", "bet-scorer", "bet-writer")


@pytest.fixture
def system(stack: Stack, empty_database: str) -> Iterator[System]:
    broker = local.Broker(local.free_port()).start()
    env = {
        **stack.env,
        "BETTING_DATABASE_URL": empty_database,
        "BETTING_KAFKA_BROKERS": broker.address,
    }
    engine = create_engine(empty_database)
    workdir = stack.workdir / f"reset-{broker.port}"
    workdir.mkdir()
    functions = {
        name: local.Component(
            name,
            # The supervisor's liveness probe reads it, as Kubernetes' does.
            env={**env, "BETTING_HEARTBEAT_FILE": str(workdir / f"{name}.heartbeat")},
            log_path=workdir / f"{name}.log",
        )
        for name in FUNCTIONS
    }
    system = System(stack, broker, env, engine, functions, Supervisor(functions, workdir))
    try:
        system.setup()
        for component in functions.values():
            component.start()
        system.supervisor.start()
        yield system
    finally:
        system.supervisor.stop()
        for component in functions.values():
            component.stop()
        engine.dispose()
        system.broker.stop()


def _setup_recreates(system: System) -> None:
    system.delete_topics()
    system.setup()


def _recreated_by_hand_before_setup(system: System) -> None:
    system.delete_topics()
    system.create_topics_by_hand()


def _broker_restarted_empty(system: System) -> None:
    system.restart_broker_empty()
    system.setup()


RESETS: dict[str, Callable[[System], None]] = {
    "setup-recreates": _setup_recreates,
    "recreated-by-hand-before-setup": _recreated_by_hand_before_setup,
    "broker-restarted-empty": _broker_restarted_empty,
}


@pytest.mark.parametrize("reset", list(RESETS))
def test_no_change_is_skipped_after_the_log_starts_over(
    system: System, place_bet: Callable[..., Bet], reset: str
) -> None:
    engine = system.engine
    log = system.log()
    event_id = log.create_event()
    wait_for_event(event_id, engine=engine)
    team_1 = place_bet(event_id, Market.TEAM_1, engine=engine)
    draw = place_bet(event_id, Market.DRAW, engine=engine)
    log.update_event(event_id, state="active")
    for odds in ODDS:  # versions well past what the new log will reach
        last = log.update_event(event_id, odds=odds)
    wait_for_event(event_id, engine=engine, version=last)
    wait_for(lambda: bet_states(event_id, engine)[draw.id] == BetState.WINNING.value)

    RESETS[reset](system)
    reset_at = time.monotonic()
    # Each function ends on its own, and the supervisor restarts it: its log watch exits
    # naming the topic (betting/log_watch.py), unless its consumer died first on the topic's
    # deletion (librdkafka under the embedded broker: seen here as SIGSEGV).
    restarts = system.supervisor.restarts
    wait_for(lambda: all(restarts[name] for name in FUNCTIONS), 30, "every function restarted")
    all_restarted_s = time.monotonic() - reset_at
    # The scorer must wait for the event writer, which is not there when the change arrives.
    with system.supervisor.held("event-writer"):
        system.functions["event-writer"].stop()
        log = system.log()
        offset = log.update_event(event_id, score="1-0")
        assert offset < last
        time.sleep(3)
        system.functions["event-writer"].start()

    wait_for_event(event_id, 60, engine=engine, score=Score(1, 0), version=offset)
    states = {team_1.id: BetState.WINNING.value, draw.id: BetState.LOSING.value}
    wait_for(lambda: bet_states(event_id, engine) == states, 60, "the bets rescored")
    print(
        f"[{reset}] every function restarted {all_restarted_s:.1f} s after the reset "
        f"({dict(restarts)}), the change applied and scored {time.monotonic() - reset_at:.1f} s "
        f"after (the event writer held 3 s of it); log watch exits: {system.exits()}"
    )

    # New events, their bets and their settlement work on the new log.
    fresh = log.create_event()
    wait_for_event(fresh, engine=engine)
    bet = place_bet(fresh, Market.TEAM_2, engine=engine)
    log.update_event(fresh, state="finished")
    wait_for(lambda: bet_states(fresh, engine) == {bet.id: BetState.LOSE.value}, 60)
    assert wait_for_event(fresh, engine=engine).state == EventState.FINISHED.value
