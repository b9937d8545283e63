"""Comparing what the two sides exchanged: the sample gives exactly its expected answer, and so
does a generated exercise with an answer of its own, whatever shape the files arrive in."""

from __future__ import annotations

import pytest

from liaison.errors import Invalid
from liaison.exchange import comparison as compare
from liaison.exchange.parsing import Declaration, ListEntry, parse_dataset
from tests.exchange_support import (
    CHINESE_IMPORT_HEADERS,
    OUTCOME_KEYS,
    expected,
    generate,
    sample,
    to_csv,
    to_xlsx,
    with_headers,
)


def _rows(data: bytes, kind: str) -> list:
    parsed = parse_dataset(data, kind=kind)
    assert parsed.ok, parsed.errors[:3]
    return parsed.rows


def _sample_mirror(exports: bytes, imports: bytes, prohibited: bytes) -> compare.MirrorComparison:
    return compare.compare_declarations(
        _rows(exports, "export_declarations"),
        _rows(imports, "import_declarations"),
        prohibited=[e.hs_code for e in _rows(prohibited, "prohibited_list")],
    )


# --- the sample -------------------------------------------------------------------------------


def test_the_sample_gives_exactly_the_expected_containers_in_every_list() -> None:
    answer = expected()

    result = _sample_mirror(
        sample("exports_felixstowe.csv"), sample("imports_nansha.csv"), sample("prohibited_cn.csv")
    )

    for outcome in OUTCOME_KEYS:
        assert result.outcomes[outcome] == answer[outcome], outcome
    assert result.summary == {outcome: len(answer[outcome]) for outcome in OUTCOME_KEYS}
    assert (result.weight_tolerance, result.hs_digits) == (
        answer["weight_tolerance"],
        answer["hs_compare_digits"],
    )


def test_the_sample_lists_overlap_exactly_as_expected() -> None:
    result = compare.compare_lists(
        _rows(sample("allowed_export_uk.csv"), "allowed_list"),
        _rows(sample("prohibited_cn.csv"), "prohibited_list"),
    )
    assert result.overlap == expected()["allowed_uk_prohibited_cn"]
    pair = next(item for item in result.overlaps if item.prefix == "3915")
    assert pair.allowed_description.startswith("Plastic waste")
    assert pair.prohibited_description.startswith("Waste, parings")


def test_workbooks_give_the_same_result_as_csv() -> None:
    answer = expected()

    result = _sample_mirror(
        to_xlsx(sample("exports_felixstowe.csv")),
        to_xlsx(sample("imports_nansha.csv")),
        to_xlsx(sample("prohibited_cn.csv")),
    )

    for outcome in OUTCOME_KEYS:
        assert result.outcomes[outcome] == answer[outcome], outcome


def test_chinese_headers_in_gb18030_give_the_same_result() -> None:
    imports = to_csv(
        with_headers(sample("imports_nansha.csv"), CHINESE_IMPORT_HEADERS), encoding="gb18030"
    )
    result = _sample_mirror(sample("exports_felixstowe.csv"), imports, sample("prohibited_cn.csv"))
    for outcome in OUTCOME_KEYS:
        assert result.outcomes[outcome] == expected()[outcome], outcome


def test_every_container_of_the_sample_is_on_exactly_one_side_by_side_line_per_side() -> None:
    result = _sample_mirror(
        sample("exports_felixstowe.csv"), sample("imports_nansha.csv"), sample("prohibited_cn.csv")
    )
    exports = [p.container_no for p in result.pairings if p.export is not None]
    imports = [p.container_no for p in result.pairings if p.import_ is not None]
    assert len(exports) == len(set(exports)) == 120
    assert len(imports) == len(set(imports)) == 117
    matched = next(p for p in result.pairings if p.container_no == "CMAU0538705")
    assert matched.export is not None
    assert matched.import_ is not None
    assert matched.export.bill_of_lading == matched.import_.bill_of_lading


# --- a generated exercise -------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [17, 2026])
def test_a_generated_exercise_gives_its_own_known_answer(seed: int) -> None:
    generated = generate(count=800, seed=seed)

    result = _sample_mirror(
        generated.exports_csv(), generated.imports_csv(), generated.prohibited_csv()
    )

    for outcome in OUTCOME_KEYS:
        assert result.outcomes[outcome] == generated.expected[outcome], outcome
    # The generator made every kind of case, the tricky ones included.
    assert all(generated.expected[outcome] for outcome in OUTCOME_KEYS)
    both = set(generated.expected["export_only"]) & set(generated.expected["import_only"])
    assert both, "no container with differing bills of lading was generated"
    for container in both:
        lines = [p for p in result.pairings if p.container_no == container]
        assert [p.outcome for p in lines] == ["export_only", "import_only"]
        assert {p.note for p in lines} == {compare.BILL_OF_LADING_DIFFERS}


def test_the_generated_exercise_reads_the_same_from_workbooks() -> None:
    generated = generate(count=300, seed=5)
    result = _sample_mirror(
        to_xlsx(generated.exports_csv()),
        to_xlsx(generated.imports_csv()),
        to_xlsx(generated.prohibited_csv()),
    )
    for outcome in OUTCOME_KEYS:
        assert result.outcomes[outcome] == generated.expected[outcome], outcome


# --- the rules, one at a time ---------------------------------------------------------------------


def _declaration(container: str, code: str, mass: float, bill: str = "B1") -> Declaration:
    return Declaration(
        row=2, container_no=container, bill_of_lading=bill, hs_code=code, net_mass_kg=mass
    )


def test_exactly_the_tolerance_is_within_it_and_a_gram_more_is_not() -> None:
    exports = [_declaration("A", "72044910", 100.0), _declaration("B", "72044910", 100.0)]
    imports = [_declaration("A", "7204491000", 105.0), _declaration("B", "7204491000", 105.001)]

    result = compare.compare_declarations(exports, imports)

    assert result.outcomes["matched"] == ["A"]
    assert result.outcomes["weight_mismatch"] == ["B"]


def test_the_tolerance_is_configurable() -> None:
    exports = [_declaration("A", "72044910", 1000.0)]
    imports = [_declaration("A", "7204491000", 1080.0)]
    assert compare.compare_declarations(exports, imports).outcomes["weight_mismatch"] == ["A"]
    loose = compare.compare_declarations(exports, imports, weight_tolerance=0.1)
    assert loose.outcomes["matched"] == ["A"]


def test_codes_are_compared_at_six_digits_unless_told_otherwise() -> None:
    exports = [_declaration("A", "72044910", 10.0), _declaration("B", "72044110", 10.0)]
    imports = [_declaration("A", "7204499000", 10.0), _declaration("B", "7204491000", 10.0)]

    six = compare.compare_declarations(exports, imports)
    eight = compare.compare_declarations(exports, imports, hs_digits=8)
    four = compare.compare_declarations(exports, imports, hs_digits=4)

    assert (six.outcomes["matched"], six.outcomes["hs_mismatch"]) == (["A"], ["B"])
    assert eight.outcomes["hs_mismatch"] == ["A", "B"]
    assert four.outcomes["matched"] == ["A", "B"]


def test_an_hs_mismatch_is_reported_before_a_weight_mismatch() -> None:
    result = compare.compare_declarations(
        [_declaration("A", "72044910", 10.0)], [_declaration("A", "7404001000", 99.0)]
    )
    assert result.outcomes["hs_mismatch"] == ["A"]
    assert result.outcomes["weight_mismatch"] == []


def test_a_prohibited_export_is_flagged_whatever_else_it_is() -> None:
    exports = [
        _declaration("A", "39152000", 10.0),
        _declaration("B", "85481010", 10.0),
        _declaration("C", "85489090", 10.0),
    ]
    result = compare.compare_declarations(
        exports, [_declaration("A", "3915200000", 10.0)], prohibited=["3915", "854810"]
    )
    assert result.outcomes["prohibited_hits"] == ["A", "B"]
    assert result.outcomes["matched"] == ["A"]
    assert result.outcomes["export_only"] == ["B", "C"]
    line = next(p for p in result.pairings if p.container_no == "B")
    assert line.prohibited_prefix == "854810"


def test_parameters_out_of_range_are_refused() -> None:
    with pytest.raises(ValueError, match="weight_tolerance"):
        compare.compare_declarations([], [], weight_tolerance=1.5)
    with pytest.raises(ValueError, match="hs_digits"):
        compare.compare_declarations([], [], hs_digits=5)


def test_prefixes_of_different_lengths_overlap_both_ways() -> None:
    allowed = [
        ListEntry(2, "8548"),
        ListEntry(3, "391590"),
        ListEntry(4, "7204"),
        ListEntry(5, "26"),
    ]
    prohibited = [
        ListEntry(2, "854810"),
        ListEntry(3, "3915"),
        ListEntry(4, "2618"),
        ListEntry(5, "2620"),
    ]

    result = compare.compare_lists(allowed, prohibited)

    assert result.overlap == ["2618", "2620", "391590", "854810"]
    assert [(o.allowed, o.prohibited) for o in result.overlaps] == [
        ("26", "2618"),
        ("26", "2620"),
        ("391590", "3915"),
        ("8548", "854810"),
    ]


def test_rows_are_filtered_by_outcome() -> None:
    result = _sample_mirror(
        sample("exports_felixstowe.csv"), sample("imports_nansha.csv"), sample("prohibited_cn.csv")
    )
    rows = [compare.pairing_row(p) for p in result.pairings]

    def containers(outcome: str) -> list[str]:
        return [
            compare.row_as_dict(r)["container_no"]
            for r in compare.filter_rows(rows, outcome=outcome)
        ]

    assert len(compare.filter_rows(rows)) == len(rows) == 120 + 6
    assert containers("hs_mismatch") == expected()["hs_mismatch"]
    assert containers("prohibited_hits") == expected()["prohibited_hits"]
    assert compare.row_as_dict(rows[0]) == compare.pairing_as_dict(result.pairings[0])
    with pytest.raises(Invalid):
        compare.filter_rows(rows, outcome="everything")
