"""Hand-over: the comparison's result leaves as a package signed with the audit key, which the
departments receiving it check offline with the public key alone; the hand-over is on record."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from liaison.audit import offline_verifier, signing
from liaison.models import AuditEvent, Comparison, Dataset, Room, User
from liaison.services import exchange
from tests import exchange_support as support
from tests.exchange_support import SAMPLE_FILES, sample

store = support.store
pytestmark = pytest.mark.django_db
RECIPIENT = "Guangzhou Customs Anti-Smuggling Bureau; Environment Agency (England)"


@pytest.fixture
def run(room: Room, uk_officer: User, gz_officer: User) -> exchange.ComparisonRun:
    ids = {}
    for name in ("exports", "imports", "prohibited"):
        filename, kind = SAMPLE_FILES[name]
        ids[name] = exchange.upload_dataset(
            uploader=uk_officer if name == "exports" else gz_officer,
            exercise_id=room.exercise_id,
            kind=kind,
            filename=filename,
            chunks=[sample(filename)],
        ).dataset.pk
    return exchange.run_mirror_comparison(actor=gz_officer, exercise_id=room.exercise_id, **ids)


def _hand_over(client: Client, comparison_id: int, recipient: str = RECIPIENT) -> Any:
    return client.post(
        f"/api/v1/comparisons/{comparison_id}/handover",
        json.dumps({"recipient": recipient}),
        content_type="application/json",
    )


def _public_key() -> Any:
    return offline_verifier.load_public_key(signing.public_key_b64())


def test_a_handed_over_package_verifies_offline_with_the_public_key(
    login_as: Any, run: exchange.ComparisonRun, uk_officer: User, tmp_path: Path, capsys: Any
) -> None:
    response = _hand_over(login_as(Client(), uk_officer), run.comparison.pk)

    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/zip"
    package = tmp_path / "handover.zip"
    package.write_bytes(response.content)
    names = sorted(zipfile.ZipFile(package).namelist())
    stem = f"CFE-TEST-WASTE-comparison-{run.comparison.pk}"
    assert names == sorted([f"{stem}.csv", f"{stem}.xlsx", "manifest.json", "manifest.sig"])
    check = offline_verifier.verify_package(package, _public_key())
    assert check.ok, check.problems
    assert (check.format, check.files, check.exercise) == ("liaison-handover", 2, "CFE-TEST-WASTE")
    # The command line says so too, for the zip as for the unpacked directory.
    assert offline_verifier.main([str(package), "--public-key", signing.public_key_b64()]) == 0
    assert "hand-over package of CFE-TEST-WASTE verified" in capsys.readouterr().out
    unpacked = tmp_path / "unpacked"
    zipfile.ZipFile(package).extractall(unpacked)
    assert offline_verifier.verify_export(unpacked, _public_key()).ok


def test_the_manifest_names_the_exercise_the_inputs_and_the_recipient(
    login_as: Any, run: exchange.ComparisonRun, uk_officer: User
) -> None:
    response = _hand_over(login_as(Client(), uk_officer), run.comparison.pk)

    manifest = json.loads(zipfile.ZipFile(io.BytesIO(response.content)).read("manifest.json"))
    assert manifest["format"] == "liaison-handover"
    assert manifest["exercise"]["code"] == "CFE-TEST-WASTE"
    assert manifest["handed_over"]["to"] == RECIPIENT
    assert manifest["handed_over"]["by"] == "Olivia Hughes"
    assert manifest["comparison"]["summary"]["matched"] == 77
    inputs = {entry["kind"]: entry for entry in manifest["comparison"]["inputs"]}
    exports = Dataset.objects.get(kind="export_declarations")
    assert inputs["export_declarations"]["sha256"] == exports.sha256
    assert inputs["export_declarations"]["name"] == "exports_felixstowe.csv"
    event = AuditEvent.objects.get(action="comparison.handed_over")
    assert event.details["recipient"] == RECIPIENT
    assert event.target_id == str(run.comparison.pk)


def _rezip(data: bytes, name: str, change: Any) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for item in source.namelist():
            content = source.read(item)
            target.writestr(item, change(content) if item == name else content)
    return out.getvalue()


def test_an_altered_result_or_manifest_fails_the_check(
    login_as: Any, run: exchange.ComparisonRun, uk_officer: User, tmp_path: Path
) -> None:
    data = _hand_over(login_as(Client(), uk_officer), run.comparison.pk).content
    stem = f"CFE-TEST-WASTE-comparison-{run.comparison.pk}"
    altered_csv = tmp_path / "csv.zip"
    altered_csv.write_bytes(
        _rezip(data, f"{stem}.csv", lambda b: b.replace(b"matched", b"mismatc"))
    )
    altered_manifest = tmp_path / "manifest.zip"
    altered_manifest.write_bytes(
        _rezip(data, "manifest.json", lambda b: b.replace(b"Guangzhou", b"Shenzhen"))
    )

    csv_check = offline_verifier.verify_package(altered_csv, _public_key())
    manifest_check = offline_verifier.verify_package(altered_manifest, _public_key())

    assert not csv_check.ok
    assert "altered" in csv_check.problems[0]
    assert not manifest_check.ok
    assert "does not verify" in manifest_check.problems[0]


def test_only_members_hand_over_a_finished_comparison(
    login_as: Any,
    run: exchange.ComparisonRun,
    room: Room,
    gz_officer: User,
    gz_observer: User,
    auditor: User,
    outsider: User,
) -> None:
    comparison_id = run.comparison.pk
    assert _hand_over(login_as(Client(), gz_observer), comparison_id).status_code == 403
    assert _hand_over(login_as(Client(), auditor), comparison_id).status_code == 403
    assert _hand_over(login_as(Client(), outsider), comparison_id).status_code == 404
    assert _hand_over(login_as(Client(), gz_officer), comparison_id, "").status_code == 400
    running = Comparison.objects.create(
        exercise=room.exercise, kind="mirror", run_by=gz_officer, key_room=room
    )
    assert _hand_over(login_as(Client(), gz_officer), running.pk).status_code == 409
    assert not AuditEvent.objects.filter(action="comparison.handed_over").exists()


def test_the_results_page_hands_over_through_its_form(
    login_as: Any, run: exchange.ComparisonRun, uk_officer: User
) -> None:
    client = login_as(Client(), uk_officer)
    page = client.get(f"/comparisons/{run.comparison.pk}/").content.decode()
    assert 'name="recipient"' in page

    response = client.post(f"/comparisons/{run.comparison.pk}/handover/", {"recipient": RECIPIENT})

    assert response.status_code == 200
    assert response.content.startswith(b"PK")
    assert "attachment;" in response["Content-Disposition"]
