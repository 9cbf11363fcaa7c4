"""The gateway's baseline: a FastAPI hello world taking a Pydantic body on `POST /bets`.

Served by uvicorn exactly as `betting gateway` serves the real app (the same call with the
same settings), so the difference measured is the gateway's own work.
"""

import uuid
from decimal import Decimal
from typing import Literal

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel

from betting.settings import get_settings

app = FastAPI()


class Body(BaseModel):
    event_id: uuid.UUID
    market: Literal["team_1", "team_2", "draw"]
    amount: Decimal


@app.post("/bets")
async def hello(body: Body) -> Body:
    return body


def main() -> None:
    # The very call `betting gateway` makes (gateway/main.py), on purpose: same server settings.
    settings = get_settings()
    uvicorn.run(
        app,
        host=settings.gateway_host,
        port=settings.gateway_port,
        log_level=settings.log_level.lower(),
    )


if __name__ == "__main__":
    main()
