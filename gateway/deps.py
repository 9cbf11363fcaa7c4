"""What the routes of both servers depend on, as `Annotated` aliases: `db: Db, user: Player`.
The line provider's producer is `gateway.producer.PublisherDep`: nothing here may reach Kafka,
because the bet maker imports this module.

Every dependency here is `async` on purpose: FastAPI runs each sync dependency (and a sync
route, and the check of its answer) in a worker thread of its own, and under load those hops,
not the work, were where the time went. Only database work leaves the event loop, through
`Database.run`: one hop per request.
"""

import logging
from collections.abc import Callable, Coroutine
from functools import partial
from typing import Annotated, Any, TypeVar

from anyio import to_thread
from fastapi import Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from sqlmodel import Session

from betting.auth import InvalidToken, Role, User, read_token
from betting.db import get_engine
from gateway.async_db import AsyncPostgres, async_postgres

log = logging.getLogger(__name__)

T = TypeVar("T")


async def current_engine() -> Engine:
    """The process's engine (`betting.db.get_engine`), without a thread hop to get it."""
    return get_engine()


EngineDep = Annotated[Engine, Depends(current_engine)]


class Database:
    """Runs a data function (`gateway.crud`: keyword-only, `session` first) in a worker thread,
    with a session of its own that is closed, and its connection returned, in that thread."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @property
    def postgres(self) -> AsyncPostgres:
        """The same database through asynchronous connections, for one-statement work that
        needs no worker thread (`gateway.crud.place_new_bet`)."""
        return async_postgres(self._engine)

    async def run(self, function: Callable[..., T], /, **kwargs: Any) -> T:
        # The default limiter, sized to the connection pool (`gateway.app.create_app`).
        return await to_thread.run_sync(partial(self._call, function, kwargs))

    def _call(self, function: Callable[..., T], kwargs: dict[str, Any]) -> T:
        with Session(self._engine, expire_on_commit=False) as session:
            return function(session=session, **kwargs)


async def database(engine: EngineDep) -> Database:
    return Database(engine)


Db = Annotated[Database, Depends(database)]


bearer = HTTPBearer(
    auto_error=False, bearerFormat="JWT", description="`betting token --role ...` mints one."
)


def _unauthorized(reason: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, reason, headers={"WWW-Authenticate": "Bearer"}
    )


async def get_current_user(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> User:
    """The user named by the bearer token; 401 without a valid one."""
    if credentials is None:
        raise _unauthorized("not authenticated")
    try:
        return read_token(credentials.credentials)  # CPU only, tens of µs
    except InvalidToken as exc:
        # The reason (which claim, which check failed) is for our log, not for the caller.
        log.info("token refused: %s", exc)
        raise _unauthorized("invalid or expired token") from exc


CurrentUser = Annotated[User, Depends(get_current_user)]


def require(role: Role) -> Callable[[User], Coroutine[Any, Any, User]]:
    """A dependency that lets only `role` through; 403 for the other one."""

    async def check(user: CurrentUser) -> User:
        if user.role is not role:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"only a {role} may do this")
        return user

    return check


Operator = Annotated[User, Depends(require(Role.OPERATOR))]
Player = Annotated[User, Depends(require(Role.PLAYER))]
