"""The servers' baseline: a FastAPI hello world taking a Pydantic body on `POST /bets`.

Served by the servers' own `serve` (the same uvicorn call with the same settings), on the port
given in `BENCH_HELLO_PORT`, so the difference measured is the servers' own work.
"""

import os
import uuid
from decimal import Decimal
from typing import Literal

from fastapi import FastAPI
from pydantic import BaseModel

from gateway.app import serve

app = FastAPI()


class Body(BaseModel):
    event_id: uuid.UUID
    market: Literal["team_1", "team_2", "draw"]
    amount: Decimal


@app.post("/bets")
async def hello(body: Body) -> Body:
    return body


if __name__ == "__main__":
    serve(app, int(os.environ["BENCH_HELLO_PORT"]))
