"""Tokens: a token verified once is remembered, but never past its expiry or another secret."""

import time

import pytest

from betting.auth import InvalidToken, Role, User, mint_token, read_token
from betting.settings import get_settings


def test_a_remembered_token_is_refused_once_it_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    token = mint_token("p", Role.PLAYER, ttl_s=60)
    assert read_token(token) == User("p", Role.PLAYER)  # verified, and now remembered

    later = time.time() + 61
    monkeypatch.setattr(time, "time", lambda: later)

    with pytest.raises(InvalidToken, match="expired"):
        read_token(token)


def test_a_remembered_token_is_refused_when_the_secret_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = mint_token("p", Role.PLAYER)
    assert read_token(token).id == "p"

    monkeypatch.setattr(get_settings(), "auth_secret", "another-secret-another-secret-abcd")

    with pytest.raises(InvalidToken, match="Signature verification failed"):
        read_token(token)


def test_a_refused_token_is_not_remembered_as_valid() -> None:
    forged = mint_token("p", Role.PLAYER)[:-2] + "xx"
    for _ in range(2):
        with pytest.raises(InvalidToken):
            read_token(forged)
