"""Access tokens: HS256 JWTs with `sub`, `role` and `exp`."""

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import lru_cache

import jwt

from betting.settings import get_settings

ALGORITHM = "HS256"
# The database stores user ids in a varchar(255).
MAX_USER_ID_LENGTH = 255


class Role(StrEnum):
    OPERATOR = "operator"
    PLAYER = "player"


@dataclass(frozen=True)
class User:
    """Who a request speaks for, as its token says."""

    id: str
    role: Role


class InvalidToken(Exception):
    """A token that is missing a claim, expired, or not signed with our secret."""


def mint_token(user_id: str, role: Role, ttl_s: int | None = None) -> str:
    """A signed token for `user_id` acting as `role`."""
    settings = get_settings()
    expires = datetime.now(UTC) + timedelta(seconds=ttl_s or settings.auth_token_ttl_s)
    claims = {"sub": user_id, "role": role.value, "exp": expires}
    return jwt.encode(claims, settings.auth_secret, algorithm=ALGORITHM)


def read_token(token: str) -> User:
    """The user a token speaks for; raises `InvalidToken` with the reason.

    A token verified once is remembered (up to `VERIFIED_TOKENS` of them) until it expires:
    a client sends the same token with every request, and checking its signature again each
    time was a fourteenth of a bet's placement. Only valid tokens are remembered, keyed by
    the secret too, and each use checks the expiry again.
    """
    user, expires = _verified(token, get_settings().auth_secret)
    if time.time() >= expires:  # expired since it was remembered (from `exp` on, as PyJWT)
        raise InvalidToken("Signature has expired")
    return user


VERIFIED_TOKENS = 4096


@lru_cache(maxsize=VERIFIED_TOKENS)
def _verified(token: str, secret: str) -> tuple[User, float]:
    """Who `token` speaks for and when it expires (a Unix time), if `secret` signed it."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={"require": ["sub", "role", "exp"]},
        )
    except jwt.InvalidTokenError as exc:
        raise InvalidToken(str(exc)) from exc
    user_id = claims["sub"]
    if not user_id or len(user_id) > MAX_USER_ID_LENGTH:
        raise InvalidToken(f"the subject must be 1 to {MAX_USER_ID_LENGTH} characters")
    try:
        role = Role(claims["role"])
    except ValueError:
        raise InvalidToken(f"unknown role {claims['role']!r}") from None
    return User(id=user_id, role=role), float(claims["exp"])
