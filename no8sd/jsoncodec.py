"""JSON in and out, fast: orjson where it gives the same answer as the standard library.

orjson serialises a resource about 15x and parses it about 2x faster than `json`, and its
output is what the daemon always wrote (compact, UTF-8, no ASCII escapes). Where the two
differ the standard library is used instead: orjson refuses to write integers beyond 64
bits (so `dumps` falls back), and reads them as floats, losing digits (so `loads` reads
any text holding a run of 19 or more digits with `json`).
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

import orjson

_LONG_NUMBER: Final = re.compile(r"\d{19,}")
_LONG_NUMBER_BYTES: Final = re.compile(rb"\d{19,}")


def dumps(value: Any) -> str:
    """Compact JSON text (as json.dumps with separators (",", ":"), ensure_ascii=False)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # an integer beyond 64 bits (or a non-JSON value: let json say so)
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def dumps_bytes(value: Any) -> bytes:
    """`dumps`, encoded as UTF-8."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def loads(text: str | bytes) -> Any:
    """Parse JSON the daemon stored (or wrote) exactly, long integers included."""
    long_number = (_LONG_NUMBER_BYTES.search(text) if isinstance(text, bytes)
                   else _LONG_NUMBER.search(text))
    if long_number is not None:
        return json.loads(text)
    return orjson.loads(text)
