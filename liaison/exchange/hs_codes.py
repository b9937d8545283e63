"""Harmonized System codes as officers write them: digits, sometimes dotted or spaced.

The first six digits are the harmonized level every customs administration shares; the UK adds
two (8-digit commodity codes), China four (10-digit codes). Lists are written as prefixes of
any even length (a chapter, a 4-digit heading, a 6-digit subheading or longer): a prefix covers
every longer code that starts with it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# What may separate groups of digits in a written code: "7204.49.10", "7204 49 10".
_SEPARATORS = re.compile(r"[\s.\-]")
_DIGITS = re.compile(r"[0-9]+")

PREFIX_LENGTHS = (2, 4, 6, 8, 10)
DECLARATION_MIN_DIGITS = 6
MAX_DIGITS = 10
HARMONIZED_DIGITS = 6


def normalise(raw: str) -> str:
    """The digits of a written code, separators removed ("" if anything else is in it)."""
    text = _SEPARATORS.sub("", raw)
    return text if _DIGITS.fullmatch(text) else ""


def restore_leading_zero(digits: str) -> str:
    """A code read from a numeric spreadsheet cell lost its leading zero ("0301" became 301):
    HS codes always have an even number of digits, so an odd count gets its zero back."""
    return "0" + digits if len(digits) % 2 else digits


def is_prefix(code: str) -> bool:
    """A list entry: 2, 4, 6, 8 or 10 digits."""
    return len(code) in PREFIX_LENGTHS and code.isdigit()


def is_declared_code(code: str) -> bool:
    """A code on a declaration: at least the six harmonized digits, at most ten, even."""
    return (
        code.isdigit() and DECLARATION_MIN_DIGITS <= len(code) <= MAX_DIGITS and len(code) % 2 == 0
    )


def same_at(first: str, second: str, digits: int) -> bool:
    """Whether two codes agree on their first ``digits`` digits (both must be that long)."""
    return len(first) >= digits and len(second) >= digits and first[:digits] == second[:digits]


def prefixes_overlap(first: str, second: str) -> bool:
    """Two prefixes cover some code in common exactly when one starts with the other."""
    return first.startswith(second) or second.startswith(first)


def common_prefix(first: str, second: str) -> str | None:
    """The codes both prefixes cover, as one prefix (the longer one), or None."""
    if not prefixes_overlap(first, second):
        return None
    return first if len(first) >= len(second) else second


class PrefixIndex:
    """Which listed prefix, if any, covers a code: one set lookup per distinct prefix length,
    so a hundred thousand declarations are checked against a list in well under a second."""

    def __init__(self, prefixes: Iterable[str]) -> None:
        self._prefixes: dict[str, None] = dict.fromkeys(p for p in prefixes if p)
        self._lengths = sorted({len(p) for p in self._prefixes})

    def __len__(self) -> int:
        return len(self._prefixes)

    def covering(self, code: str) -> str | None:
        """The shortest listed prefix the code starts with (the broadest entry), or None."""
        for length in self._lengths:
            if length > len(code):
                break
            head = code[:length]
            if head in self._prefixes:
                return head
        return None
