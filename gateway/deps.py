"""What the routes of both servers depend on, as `Annotated` aliases: `session: SessionDep,
user: Player`. The line provider's producer is `gateway.producer.PublisherDep`: nothing here
may reach Kafka, because the bet maker imports this module."""

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from sqlmodel import Session

from betting.auth import InvalidToken, Role, User, read_token
from betting.db import get_engine

EngineDep = Annotated[Engine, Depends(get_engine)]


def get_session(engine: EngineDep) -> Iterator[Session]:
    """A session per request; data functions commit what they change."""
    with Session(engine, expire_on_commit=False) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


bearer = HTTPBearer(
    auto_error=False, bearerFormat="JWT", description="`betting token --role ...` mints one."
)


def _unauthorized(reason: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, reason, headers={"WWW-Authenticate": "Bearer"}
    )


def get_current_user(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> User:
    """The user named by the bearer token; 401 without a valid one."""
    if credentials is None:
        raise _unauthorized("not authenticated")
    try:
        return read_token(credentials.credentials)
    except InvalidToken as exc:
        raise _unauthorized(f"invalid token: {exc}") from exc


CurrentUser = Annotated[User, Depends(get_current_user)]


def require(role: Role) -> Callable[[User], User]:
    """A dependency that lets only `role` through; 403 for the other one."""

    def check(user: CurrentUser) -> User:
        if user.role is not role:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"only a {role} may do this")
        return user

    return check


Operator = Annotated[User, Depends(require(Role.OPERATOR))]
Player = Annotated[User, Depends(require(Role.PLAYER))]
