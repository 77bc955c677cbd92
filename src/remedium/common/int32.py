"""Whole numbers that fit the database's integer ids.

Ids and counts are INTEGER columns: 64-bit on SQLite, 32-bit on PostgreSQL. None of them nears
2**31, so a whole number outside ``[-2**31, 2**31 - 1]`` is refused before it reaches a query
(see ``api/integers.py`` for the HTTP side).
"""

from __future__ import annotations

import re

INT_MIN = -(2**31)
INT_MAX = 2**31 - 1
_WHOLE = re.compile(r"\s*[+-]?\d+\s*")


def out_of_range(text: str) -> bool:
    """True when ``text`` is a whole number that does not fit in a signed 32-bit integer."""
    if not _WHOLE.fullmatch(text):
        return False
    digits = text.strip().lstrip("+-").lstrip("0")
    if len(digits) > 19:
        return True
    return not INT_MIN <= int(text) <= INT_MAX


def as_int32(text: str) -> int | None:
    """``text`` as an integer when it is a whole number that fits in 32 bits, else ``None``.

    For ids that may be either text or one of our integer ids (a Defender machine id).
    """
    if not _WHOLE.fullmatch(text) or out_of_range(text):
        return None
    return int(text)
