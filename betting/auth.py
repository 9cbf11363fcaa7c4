"""Access tokens: HS256 JWTs with `sub`, `role` and `exp`."""

from datetime import UTC, datetime, timedelta
from enum import StrEnum

import jwt

from betting.settings import get_settings

ALGORITHM = "HS256"


class Role(StrEnum):
    OPERATOR = "operator"
    PLAYER = "player"


def mint_token(user_id: str, role: Role, ttl_s: int | None = None) -> str:
    """A signed token for `user_id` acting as `role`."""
    settings = get_settings()
    expires = datetime.now(UTC) + timedelta(seconds=ttl_s or settings.auth_token_ttl_s)
    claims = {"sub": user_id, "role": role.value, "exp": expires}
    return jwt.encode(claims, settings.auth_secret, algorithm=ALGORITHM)
