"""The gateway's baseline: a FastAPI hello world taking a Pydantic body on `POST /bets`.

Served by uvicorn exactly as `betting bet-maker` serves the real app (`gateway.app.serve`: the
same call with the same settings), so the difference measured is the bet maker's own work.
"""

import uuid
from decimal import Decimal
from typing import Literal

from fastapi import FastAPI
from pydantic import BaseModel

from betting.settings import get_settings
from gateway.app import serve

app = FastAPI()


class Body(BaseModel):
    event_id: uuid.UUID
    market: Literal["team_1", "team_2", "draw"]
    amount: Decimal


@app.post("/bets")
async def hello(body: Body) -> Body:
    return body


def main() -> None:
    # The very call `betting bet-maker` makes, on purpose: the same server settings.
    serve(app, get_settings().bet_maker_port)


if __name__ == "__main__":
    main()
