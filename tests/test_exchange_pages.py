"""The data exchange pages: Olivia uploads and checks files, maps columns the page did not
recognise, runs comparisons and reads the result side by side; outsiders find nothing."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from liaison.models import Comparison, Dataset, Room, User
from liaison.services import exchange
from tests import exchange_support as support
from tests.exchange_support import SAMPLE_FILES, expected, sample, to_csv
from tests.test_templates import inline_code_in

store = support.store
pytestmark = pytest.mark.django_db


@pytest.fixture
def uploaded(room: Room, uk_officer: User, gz_officer: User) -> dict[str, int]:
    ids = {}
    for name, (filename, kind) in SAMPLE_FILES.items():
        ids[name] = exchange.upload_dataset(
            uploader=uk_officer if name in {"exports", "allowed"} else gz_officer,
            exercise_id=room.exercise_id,
            kind=kind,
            filename=filename,
            chunks=[sample(filename)],
        ).dataset.pk
    return ids


def test_the_data_page_lists_data_sets_and_offers_the_forms(
    login_as: Any, room: Room, uk_officer: User, uploaded: dict[str, int]
) -> None:
    response = login_as(Client(), uk_officer).get(f"/exercises/{room.exercise_id}/data/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "exports_felixstowe.csv" in html
    assert 'name="file"' in html
    assert "Run the mirror comparison" in html
    assert f'<option value="{uploaded["exports"]}">' in html
    assert inline_code_in(html) == []


def test_an_observer_reads_the_page_without_the_forms(
    login_as: Any, room: Room, gz_observer: User, uploaded: dict[str, int]
) -> None:
    html = login_as(Client(), gz_observer).get(f"/exercises/{room.exercise_id}/data/").content
    assert b"prohibited_cn.csv" in html
    assert b'name="file"' not in html


def test_outsiders_find_neither_page(
    login_as: Any, room: Room, gz_officer: User, outsider: User, uploaded: dict[str, int]
) -> None:
    run = exchange.run_list_comparison(
        actor=gz_officer,
        exercise_id=room.exercise_id,
        allowed=uploaded["allowed"],
        prohibited=uploaded["prohibited"],
    )
    client = login_as(Client(), outsider)
    assert client.get(f"/exercises/{room.exercise_id}/data/").status_code == 404
    assert client.get(f"/comparisons/{run.comparison.pk}/").status_code == 404
    upload = client.post(
        f"/exercises/{room.exercise_id}/data/upload/",
        {
            "kind": "prohibited_list",
            "file": SimpleUploadedFile("p.csv", sample("prohibited_cn.csv")),
        },
    )
    assert upload.status_code == 404
    assert Dataset.objects.count() == 4


def test_uploading_through_the_page_shows_the_files_report(
    login_as: Any, room: Room, uk_officer: User
) -> None:
    data = to_csv(
        [
            ["container_no", "bill_of_lading", "hs_code", "net_mass_kg"],
            ["CMAU3350033", "FXT1", "72044910", "15316"],
            ["CMAU3350034", "FXT2", "72044910", "100"],
        ]
    )
    client = login_as(Client(), uk_officer)

    response = client.post(
        f"/exercises/{room.exercise_id}/data/upload/",
        {"kind": "export_declarations", "file": SimpleUploadedFile("bad.csv", data)},
        follow=True,
    )

    assert response.status_code == 200
    dataset = Dataset.objects.get()
    assert response.redirect_chain[-1][0].endswith(f"?dataset={dataset.pk}#report")
    html = response.content.decode()
    assert "fails its ISO 6346 check digit" in html
    assert "<td>3</td><td>container_no</td>" in html


def test_columns_the_page_did_not_recognise_are_mapped_in_a_second_step(
    login_as: Any, room: Room, uk_officer: User
) -> None:
    data = to_csv([["Box", "Doc", "Tariff", "Kilos"], ["CMAU3350033", "FXT1", "72044910", "15316"]])
    client = login_as(Client(), uk_officer)
    path = f"/exercises/{room.exercise_id}/data/upload/"

    first = client.post(
        path, {"kind": "export_declarations", "file": SimpleUploadedFile("odd.csv", data)}
    )
    second = client.post(
        path,
        {
            "kind": "export_declarations",
            "file": SimpleUploadedFile("odd.csv", data),
            "column_container_no": "Box",
            "column_bill_of_lading": "Doc",
            "column_hs_code": "Tariff",
            "column_net_mass_kg": "Kilos",
        },
    )

    assert first.status_code == 400
    html = first.content.decode()
    assert 'name="column_container_no"' in html
    assert '<option value="Kilos">Kilos</option>' in html
    assert '<option value="export_declarations" selected>' in html
    assert second.status_code == 302
    assert Dataset.objects.get().columns["container_no"] == "Box"


def test_running_a_comparison_from_the_page_leads_to_its_results(
    login_as: Any, room: Room, gz_officer: User, uploaded: dict[str, int]
) -> None:
    client = login_as(Client(), gz_officer)

    response = client.post(
        f"/exercises/{room.exercise_id}/data/compare/",
        {
            "comparison": "mirror",
            "exports": uploaded["exports"],
            "imports": uploaded["imports"],
            "prohibited": uploaded["prohibited"],
            "weight_tolerance": "5",
            "hs_digits": "6",
        },
    )

    comparison = Comparison.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/comparisons/{comparison.pk}/"
    page = client.get(response["Location"])
    html = page.content.decode()
    assert "<strong>77</strong> matched" in html
    assert "<strong>30</strong> prohibited-list hits" in html
    assert "126 rows side by side" in html
    assert "CMAU3350033" in html
    assert inline_code_in(html) == []
    only = client.get(response["Location"], {"outcome": "export_only"}).content.decode()
    assert "9 rows side by side" in only
    for container in expected()["export_only"]:
        assert container in only
    assert "no import" in only


def test_results_come_a_page_at_a_time(
    login_as: Any, room: Room, gz_officer: User, uploaded: dict[str, int], monkeypatch: Any
) -> None:
    from liaison.views import exchange as views

    monkeypatch.setattr(views, "RESULT_ROWS_PER_PAGE", 50)
    run = exchange.run_mirror_comparison(
        actor=gz_officer,
        exercise_id=room.exercise_id,
        exports=uploaded["exports"],
        imports=uploaded["imports"],
    )
    client = login_as(Client(), gz_officer)

    third = client.get(f"/comparisons/{run.comparison.pk}/", {"page": 3}).content.decode()

    assert third.count('<tr class="outcome-') == 26
    assert "Previous" in third
    assert "Next" not in third


def test_a_comparison_form_with_nothing_to_compare_explains_itself(
    login_as: Any, room: Room, uk_officer: User
) -> None:
    response = login_as(Client(), uk_officer).post(
        f"/exercises/{room.exercise_id}/data/compare/", {"comparison": "list"}
    )
    assert response.status_code == 400
    assert "must be a data set id" in response.content.decode()


def test_a_running_comparison_page_refreshes_itself(
    login_as: Any, room: Room, gz_officer: User, uploaded: dict[str, int]
) -> None:
    comparison = Comparison.objects.create(
        exercise=room.exercise,
        kind="mirror",
        run_by=gz_officer,
        exports_id=uploaded["exports"],
        imports_id=uploaded["imports"],
        key_room=room,
        progress=40,
    )
    html = login_as(Client(), gz_officer).get(f"/comparisons/{comparison.pk}/").content.decode()
    assert '<meta http-equiv="refresh" content="3">' in html
    assert '<progress max="100" value="40">' in html


def test_a_list_comparison_page_shows_the_overlap(
    login_as: Any, room: Room, uk_officer: User, uploaded: dict[str, int]
) -> None:
    run = exchange.run_list_comparison(
        actor=uk_officer,
        exercise_id=room.exercise_id,
        allowed=uploaded["allowed"],
        prohibited=uploaded["prohibited"],
    )
    html = login_as(Client(), uk_officer).get(f"/comparisons/{run.comparison.pk}/").content.decode()
    for prefix in expected()["allowed_uk_prohibited_cn"]:
        assert f"<td><code>{prefix}</code></td>" in html
