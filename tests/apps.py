"""The gateway's ASGI apps, by the `betting` command that serves each: tests run over all of them.

Today one app serves every call; when the line provider and the bet maker become two apps, list
both here and the conformance tests (OpenAPI, input rules, schemathesis) cover each.
"""

import importlib

from fastapi import FastAPI

APPS = {"gateway": "gateway.main:app"}


def load(command: str) -> FastAPI:
    """The app `betting <command>` serves."""
    module, name = APPS[command].split(":")
    app: FastAPI = getattr(importlib.import_module(module), name)
    return app
