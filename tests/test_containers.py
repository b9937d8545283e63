"""ISO 6346 container numbers: shape and check digit."""

from __future__ import annotations

import pytest

from liaison.exchange import containers


@pytest.mark.parametrize(
    "number", ["CSQU3054383", "MSKU6440390", "CMAU3350033", "TGHU9744593", "COSU9190509"]
)
def test_real_numbers_carry_the_right_check_digit(number: str) -> None:
    assert containers.is_valid(number)
    assert containers.with_check_digit(number[:10]) == number


def test_a_mistyped_digit_fails_the_check() -> None:
    assert not containers.is_valid("CSQU3054384")
    assert not containers.is_valid("CSQU3054833")  # two digits swapped
    assert containers.check_digit("CSQU305438") == 3


def test_a_check_digit_of_ten_is_written_as_zero() -> None:
    # The remainder 10 becomes 0 (ISO 6346 advises against such serials, but they exist).
    found = next(
        f"ABCU{serial:06d}"
        for serial in range(100000)
        if sum(
            (containers._LETTER_VALUES[c] if c.isalpha() else int(c)) << i
            for i, c in enumerate(f"ABCU{serial:06d}")
        )
        % 11
        == 10
    )
    assert containers.check_digit(found) == 0


def test_letters_skip_the_multiples_of_eleven() -> None:
    values = containers._LETTER_VALUES
    assert values["A"] == 10
    assert values["K"] == 21  # 11 is skipped after A
    assert values["V"] == 34  # 22 and 33 are skipped
    assert not {11, 22, 33} & set(values.values())


def test_what_people_type_is_normalised_and_the_shape_is_checked() -> None:
    assert containers.normalise("msku 644039-0") == "MSKU6440390"
    assert containers.well_formed("MSKU6440390")
    assert not containers.well_formed("MSKX6440390")  # category must be U, J or Z
    assert not containers.well_formed("MSK6440390")
    assert not containers.is_valid("MSKU644039")
