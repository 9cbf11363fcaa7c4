"""The log can start over (DESIGN.md rule 8): topics deleted and recreated under a running
system, by `betting setup` or by hand with setup not run, or the broker restarted empty;
then the functions restarted (docs/DESIGN.md, rule 8: a running consumer does not yet notice
on its own). A change sent afterwards is applied and
scored though its offset is below the versions stored, and the scorer still waits for the
event writer (stopped here while the change arrives)."""

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from sqlalchemy import Engine, create_engine

from betting import topics
from betting.domain import BetState, EventState, Market, Score
from betting.models import Bet
from launcher import local
from tests.conftest import Stack
from tests.integration.conftest import Functions, Log, bet_states, wait_for, wait_for_event

pytestmark = pytest.mark.e2e

ODDS = [{"team_1": f"{n}.50", "team_2": "3.00", "draw": "3.00"} for n in range(2, 7)]


@dataclass
class System:
    """The whole pipeline on a broker and a database of its own: its topics can go."""

    stack: Stack
    broker: local.Broker
    env: dict[str, str]
    engine: Engine
    functions: Functions

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

    def start(self, command: str) -> None:
        self.functions.start(command, **self.env)

    def restart_functions(self) -> None:
        """What docs/DESIGN.md asks once the log has started over: a running consumer keeps
        its place in the old log, which means nothing in the new one."""
        commands = [component.command for component in self.functions.running]
        self.functions.stop_all()
        for command in commands:
            self.start(command)

    def stop(self, command: str) -> None:
        for component in [c for c in self.functions.running if c.command == command]:
            component.stop()
            self.functions.running.remove(component)


@pytest.fixture
def system(stack: Stack, empty_database: str, extra_functions: Functions) -> Iterator[System]:
    broker = local.Broker(local.free_port()).start()
    env = {"BETTING_DATABASE_URL": empty_database, "BETTING_KAFKA_BROKERS": broker.address}
    engine = create_engine(empty_database)
    system = System(stack, broker, {**stack.env, **env}, engine, extra_functions)
    try:
        system.setup()
        for command in ("event-writer", "bet-scorer", "bet-writer"):
            system.start(command)
        yield system
    finally:
        import shutil  # DEBUG

        shutil.copytree(
            stack.workdir,
            "/tmp/reset-logs",
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns("postgres"),
        )
        extra_functions.stop_all()
        engine.dispose()
        system.broker.stop()


def _setup_recreates(system: System) -> None:
    system.delete_topics()
    system.setup()
    system.restart_functions()


def _recreated_by_hand_before_setup(system: System) -> None:
    system.delete_topics()
    system.create_topics_by_hand()
    system.restart_functions()


def _broker_restarted_empty(system: System) -> None:
    system.restart_broker_empty()
    system.setup()
    system.restart_functions()


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
    # The scorer must wait for the event writer, which is not there when the change arrives.
    system.stop("event-writer")
    log = system.log()
    offset = log.update_event(event_id, score="1-0")
    assert offset < last
    time.sleep(3)
    system.start("event-writer")

    wait_for_event(event_id, 60, engine=engine, score=Score(1, 0), version=offset)
    states = {team_1.id: BetState.WINNING.value, draw.id: BetState.LOSING.value}
    wait_for(lambda: bet_states(event_id, engine) == states, 60, "the bets rescored")

    # New events, their bets and their settlement work on the new log.
    fresh = log.create_event()
    wait_for_event(fresh, engine=engine)
    bet = place_bet(fresh, Market.TEAM_2, engine=engine)
    log.update_event(fresh, state="finished")
    wait_for(lambda: bet_states(fresh, engine) == {bet.id: BetState.LOSE.value}, 60)
    assert wait_for_event(fresh, engine=engine).state == EventState.FINISHED.value
