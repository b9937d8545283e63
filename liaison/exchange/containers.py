"""Container numbers (ISO 6346): owner code, category, serial number and check digit.

``MSKU6440390``: owner ``MSK``, category ``U`` (freight container; ``J`` detachable equipment,
``Z`` trailer or chassis), serial ``644039``, check digit ``0``. The check digit catches a
mistyped or transposed number, which would otherwise pair the wrong export with an import.
"""

from __future__ import annotations

import re

_SHAPE = re.compile(r"[A-Z]{3}[UJZ][0-9]{7}")
_SEPARATORS = re.compile(r"[\s\-/.]")

# Letters count 10 upwards, skipping multiples of 11 (11, 22, 33).
_LETTER_VALUES: dict[str, int] = {}
_value = 10
for _letter in "ABCDEFGHIJKLMNOPQRSTUVWXYZ":
    if _value % 11 == 0:
        _value += 1
    _LETTER_VALUES[_letter] = _value
    _value += 1


def normalise(raw: str) -> str:
    """Upper case, without the spaces and dashes people type ("msku 644039-0")."""
    return _SEPARATORS.sub("", raw).upper()


def _weighted(text: str, offset: int) -> int:
    """Each character's value times 2 to the power of its position (from ``offset``)."""
    total = 0
    for position, char in enumerate(text, start=offset):
        value = _LETTER_VALUES[char] if char.isalpha() else int(char)
        total += value << position
    return total


# The serial's two halves, precomputed: a large file checks a hundred thousand numbers.
_SERIAL_HEAD = {f"{n:03d}": _weighted(f"{n:03d}", 4) for n in range(1000)}
_SERIAL_TAIL = {f"{n:03d}": _weighted(f"{n:03d}", 7) for n in range(1000)}
_owners: dict[str, int] = {}


def check_digit(first_ten: str) -> int:
    """The check digit of owner code, category and serial number (10 characters): the sum of
    each character's value times 2 to the power of its position, modulo 11 (10 counts as 0)."""
    owner = first_ten[:4]
    head = _owners.get(owner)
    if head is None:  # at most 26**3 * 3 owner codes and categories: a bounded cache
        head = _owners[owner] = _weighted(owner, 0)
    serial_head = _SERIAL_HEAD.get(first_ten[4:7])
    serial_tail = _SERIAL_TAIL.get(first_ten[7:10])
    if serial_head is None or serial_tail is None:
        return _weighted(first_ten, 0) % 11 % 10
    return (head + serial_head + serial_tail) % 11 % 10


def well_formed(number: str) -> bool:
    """Three letters, U/J/Z, seven digits (normalised first)."""
    return bool(_SHAPE.fullmatch(number))


def is_valid(number: str) -> bool:
    """Well formed and its last digit is the right check digit."""
    return well_formed(number) and check_digit(number[:10]) == int(number[10])


def with_check_digit(first_ten: str) -> str:
    """A full number from owner code, category and serial (test data and generators)."""
    return f"{first_ten}{check_digit(first_ten)}"
