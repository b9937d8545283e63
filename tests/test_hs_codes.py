"""HS codes as officers write them, and which listed prefix covers a declared code."""

from __future__ import annotations

from liaison.exchange import hs_codes


def test_separators_are_dropped_and_anything_else_is_refused() -> None:
    assert hs_codes.normalise("7204.49.10") == "72044910"
    assert hs_codes.normalise("7204 49 10") == "72044910"
    assert hs_codes.normalise("3915-90") == "391590"
    assert hs_codes.normalise("39A5") == ""
    assert hs_codes.normalise("") == ""


def test_a_code_that_lost_its_leading_zero_in_a_spreadsheet_gets_it_back() -> None:
    assert hs_codes.restore_leading_zero("301") == "0301"
    assert hs_codes.restore_leading_zero("3019990") == "03019990"
    assert hs_codes.restore_leading_zero("3915") == "3915"


def test_list_prefixes_have_an_even_number_of_digits_up_to_ten() -> None:
    assert all(
        hs_codes.is_prefix(code) for code in ("39", "3915", "391590", "39159011", "3915901100")
    )
    assert not any(hs_codes.is_prefix(code) for code in ("3", "391", "39159011001", ""))


def test_declared_codes_carry_at_least_the_six_harmonized_digits() -> None:
    assert hs_codes.is_declared_code("391590")
    assert hs_codes.is_declared_code("72044910")
    assert hs_codes.is_declared_code("7602000000")
    assert not hs_codes.is_declared_code("3915")
    assert not hs_codes.is_declared_code("3915901")
    assert not hs_codes.is_declared_code("391590110011")


def test_prefixes_of_different_lengths_overlap_when_one_starts_with_the_other() -> None:
    assert hs_codes.prefixes_overlap("3915", "391590")
    assert hs_codes.prefixes_overlap("391590", "3915")
    assert not hs_codes.prefixes_overlap("3915", "3916")
    assert hs_codes.common_prefix("8548", "854810") == "854810"
    assert hs_codes.common_prefix("854810", "8548") == "854810"
    assert hs_codes.common_prefix("8548", "8549") is None


def test_codes_agree_at_a_number_of_digits() -> None:
    assert hs_codes.same_at("72044910", "7204491000", 6)
    assert hs_codes.same_at("72044910", "7204491000", 8)
    assert not hs_codes.same_at("72044910", "7204410000", 6)
    assert not hs_codes.same_at("7204", "72044910", 6)


def test_the_index_names_the_broadest_listed_prefix_covering_a_code() -> None:
    index = hs_codes.PrefixIndex(["3915", "391590", "854810", "26"])
    assert index.covering("39159011") == "3915"
    assert index.covering("85481010") == "854810"
    assert index.covering("85489090") is None
    assert index.covering("2618000000") == "26"
    assert index.covering("4707") is None
    assert len(index) == 4
