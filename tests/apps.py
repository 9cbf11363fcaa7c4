"""The HTTP servers' ASGI apps, by the `betting` command that serves each: tests run over all.

The line provider serves /events, the bet maker /bets; a new server listed here is covered by
the conformance tests (OpenAPI, input rules, body limit, schemathesis) at once.
"""

import importlib

from fastapi import FastAPI

APPS = {"line-provider": "gateway.line_provider:app", "bet-maker": "gateway.bet_maker:app"}


def load(command: str) -> FastAPI:
    """The app `betting <command>` serves."""
    module, name = APPS[command].split(":")
    app: FastAPI = getattr(importlib.import_module(module), name)
    return app
