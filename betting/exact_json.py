"""JSON read exactly as written: a number never passes through a binary float.

`json.loads` turns `1.850000000000000001` into the float 1.85 before any validator sees it, so
money would be rounded silently. Here a number with a fraction becomes the `Decimal` of the
digits sent, and one in exponent notation an `ExponentNumber` that no field accepts (money
explains why). Integers stay `int`. Anything that is not JSON (`NaN`, bytes that are not UTF-8,
nesting deeper than the parser goes) is a `json.JSONDecodeError`, like any malformed body.
"""

import json
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

_PLAIN_FRACTION = re.compile(r"-?[0-9]+\.[0-9]+")


@dataclass(frozen=True)
class ExponentNumber:
    """A JSON number written with an exponent (`1e1`): kept as text, accepted by no field."""

    text: str


def _number(text: str) -> Decimal | ExponentNumber:
    # `json` calls this for numbers with a fraction or an exponent, with their exact text.
    return Decimal(text) if _PLAIN_FRACTION.fullmatch(text) else ExponentNumber(text)


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def loads(data: bytes | str) -> Any:
    """Decode a JSON document, numbers as written; `JSONDecodeError` if it is not one."""
    try:
        return json.loads(data, parse_float=_number, parse_constant=_not_json)
    except json.JSONDecodeError:
        raise
    except (ValueError, RecursionError) as error:
        # UnicodeDecodeError, a constant, an integer too long to read, nesting too deep.
        document = data if isinstance(data, str) else data.decode("utf-8", "replace")
        raise json.JSONDecodeError(str(error), document, 0) from error
