"""One settings object for every component, read from `BETTING_*` environment variables."""

from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_AUTH_SECRET = "dev-secret-change-me-dev-secret-change-me"  # noqa: S105 (published on purpose)
MIN_AUTH_SECRET_BYTES = 32


class UnsafeSettings(Exception):
    """Settings that may serve local development only; `str(error)` says what to change."""


class Settings(BaseSettings):
    """Defaults serve local development (`make run`), which must say so (`BETTING_ENV=dev`)."""

    model_config = SettingsConfigDict(env_prefix="BETTING_", extra="ignore")

    # Local development allows what anywhere else would let strangers in: a known auth secret.
    # `betting dev` (`make run`) and `make token` set dev; unset means production.
    env: Literal["dev", "production"] = "production"

    database_url: str = "postgresql+psycopg2://betting:betting@127.0.0.1:5432/betting"
    database_pool_size: int = Field(default=10, ge=1)
    # Bounds on one statement, and on its wait for a row lock, in the HTTP servers: a stuck
    # query or a row held by another transaction answers 503 instead of holding a request, its
    # connection and its worker for ever. The lock wait is longer than any event change or
    # placement holds a row (milliseconds) and shorter than a client's patience.
    db_statement_timeout_ms: int = Field(default=10_000, ge=1)
    db_lock_timeout_ms: int = Field(default=2_000, ge=1)
    # The same bounds in the functions and `betting setup`, whose statements are bigger: a
    # settlement or rebase updates every bet of an event (2M in the soak) in one statement.
    # A function that meets either retries its batch (betting/streams.py).
    functions_db_statement_timeout_ms: int = Field(default=900_000, ge=1)
    functions_db_lock_timeout_ms: int = Field(default=30_000, ge=1)
    kafka_brokers: str = "127.0.0.1:9092"
    # How every Kafka client (the line provider's producer, the functions, setup's admin
    # client) reaches a secured broker, in librdkafka's terms (betting/kafka.py builds the one
    # client configuration). PLAINTEXT serves the local broker; a default Redpanda or a managed
    # Kafka wants SASL_SSL. The mechanism, user and password are used only with SASL_*.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-512"
    kafka_sasl_username: str = ""
    kafka_sasl_password: SecretStr = SecretStr("")
    # A PEM file of the CA that signed the broker's certificate (SSL, SASL_SSL); empty means
    # the system's CAs.
    kafka_ca_file: str = ""
    # tansu holds the first JoinGroup for half the session timeout; 6 s keeps start-up short.
    kafka_session_timeout_ms: int = Field(default=6000, ge=1000)
    kafka_heartbeat_interval_ms: int = Field(default=2000, ge=100)
    # A consumer that does not poll for this long leaves its group (its partitions go to
    # another member, which replays the message). It must exceed the scorer's wait for the
    # event writer, during which it does not poll, and a settlement of one event, which is one
    # step: 2M bets take minutes on a busy host, so this is far above librdkafka's 5 minutes;
    # a hung step is caught by the heartbeat (betting/liveness.py) instead.
    kafka_max_poll_interval_ms: int = Field(default=3_600_000, ge=1000)
    # How long the broker may hold a consumer's fetch when it has nothing new. tansu does not
    # answer a held fetch when a message arrives, so each hop waited ~150 ms at the client's
    # default (500); Kafka and Redpanda do, and a short value only adds idle fetches there.
    kafka_fetch_wait_max_ms: int = Field(default=10, ge=1)
    # The HTTP servers listen on every interface: in a container that is how traffic reaches them.
    http_host: str = "0.0.0.0"  # noqa: S104
    # Each server has its own port, so both run side by side on one machine (`make run`).
    line_provider_port: int = Field(default=8001, ge=1, le=65535)
    bet_maker_port: int = Field(default=8002, ge=1, le=65535)
    # How long the line provider waits for the broker to acknowledge an event before a 503.
    # Short: an operator is waiting, and a broker that has not answered in a second is in
    # trouble (its acks take milliseconds); a 503 within 2 s of the request is the promise.
    publish_timeout_s: float = Field(default=1.0, gt=0)
    auth_secret: str = DEV_AUTH_SECRET
    # How long an `Idempotency-Key` names its bet: a retry after that is a new request (and
    # the key's row is purged), so the table holds about one lifetime of keyed placements.
    idempotency_key_ttl_s: int = Field(default=24 * 3600, ge=1)
    auth_token_ttl_s: int = Field(default=24 * 3600, ge=1)
    # How often a function checkpoints: flushes its sink and commits offsets. Short, so a
    # change is visible soon; each checkpoint costs a transaction and an offset commit, which
    # an idle function skips and a busy one amortises over what arrived meanwhile.
    commit_interval_s: float = Field(default=0.02, gt=0)
    # A function also checkpoints after this many messages (0: never), bounding its batch; the
    # bet writer reads at most this many per partition ahead of the batches it is writing.
    commit_every: int = Field(default=10_000, ge=0)
    # How long the bet scorer waits for the event writer before giving up on a message.
    scorer_wait_timeout_s: float = Field(default=120.0, gt=0)
    # Rows fetched per round trip when the scorer streams bets out of Postgres.
    scorer_fetch_size: int = Field(default=5000, ge=1)
    # Records the scorer sends, then waits for the broker to take, before it reads more; each
    # chunk touches the heartbeat file, so a long settlement is not taken for a hang.
    scorer_chunk_size: int = Field(default=50_000, ge=1)
    # How often a function asks the broker whether its topics are still the incarnations it
    # started on; a new one (or none) makes it exit to be restarted (betting/log_watch.py).
    log_watch_interval_s: float = Field(default=2.0, gt=0)
    # A consumer group name suffix, so a replay can run under fresh groups.
    consumer_group_suffix: str = ""
    # File a function touches while its consumer makes progress (see betting/liveness.py).
    heartbeat_file: str = ""
    # Lag with no committed progress for this long counts as stalled.
    stall_after_s: float = Field(default=120.0, gt=0)
    log_level: str = "INFO"
    # `json`: one JSON object a line (for a log collector); `text`: lines for a person.
    log_format: Literal["text", "json"] = "text"
    # A function serves Prometheus metrics on this port (betting/metrics.py); 0: none. Off by
    # default, so several functions on one machine (`make run`, the tests) never clash.
    metrics_port: int = Field(default=0, ge=0, le=65535)
    # A server stays ready while a dependency it needs (Postgres, the broker) has answered
    # within this many seconds: a blip of a shared dependency must not take every replica out
    # of its Service at once (gateway/routers/ops.py).
    readiness_grace_s: float = Field(default=20.0, ge=0)
    # What `betting setup` creates the topics with, and what the functions declare. The
    # partition count bounds a function's useful replicas.
    topic_partitions: int = Field(default=3, ge=1)
    topic_replication_factor: int = Field(default=1, ge=1)
    topic_retention_ms: int = Field(default=7 * 24 * 3600 * 1000, ge=-1)
    # The bet stream sends a comment line at least this often (the contract says 15 s at most),
    # so proxies keep the connection and clients can tell a quiet stream from a dead one.
    stream_keepalive_s: float = Field(default=15.0, gt=0, le=15)
    # Changes a bet stream subscriber may have waiting; one more and it is dropped as too slow
    # (it resumes from its cursor). Bounds the gateway's memory per subscriber.
    stream_queue_size: int = Field(default=1000, ge=1)
    # How long the bet stream's log keeps a change: how long a client may be away and still
    # resume from its cursor without a gap.
    stream_retention_s: float = Field(default=7 * 24 * 3600, gt=0)

    @model_validator(mode="after")
    def _kafka_security_is_whole(self) -> "Settings":
        """A half-configured secured broker fails at start, saying what is missing, rather
        than as a client that retries its authentication forever."""
        protocol = self.kafka_security_protocol
        if protocol.startswith("SASL_"):
            missing = [
                f"BETTING_KAFKA_SASL_{name.upper()}"
                for name, value in (
                    ("username", self.kafka_sasl_username),
                    ("password", self.kafka_sasl_password.get_secret_value()),
                )
                if not value
            ]
            if missing:
                raise ValueError(f"BETTING_KAFKA_SECURITY_PROTOCOL={protocol} needs {missing}")
        if self.kafka_ca_file and not protocol.endswith("SSL"):
            raise ValueError(
                f"BETTING_KAFKA_CA_FILE is only used with TLS (SSL or SASL_SSL), not {protocol}"
            )
        return self

    def check_safe(self) -> None:
        """Raise `UnsafeSettings` unless these settings may serve outside local development."""
        if self.env == "dev":
            return
        if self.auth_secret == DEV_AUTH_SECRET:
            problem = "is the built-in development key, which anyone can read"
        elif len(self.auth_secret.encode()) < MIN_AUTH_SECRET_BYTES:
            problem = f"is empty or shorter than {MIN_AUTH_SECRET_BYTES} bytes"
        else:
            return
        raise UnsafeSettings(
            f"BETTING_AUTH_SECRET {problem}: anyone could mint an operator token. Set it to "
            f"{MIN_AUTH_SECRET_BYTES} random bytes or more (e.g. `openssl rand -hex 32`), or set "
            "BETTING_ENV=dev on a developer's machine."
        )


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
