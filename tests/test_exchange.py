"""The exchange as officers drive it through the JSON API: Olivia (uk_officer) uploads
Felixstowe's exports, Li Wei (gz_officer) Nansha's imports and China's prohibited list, and a
comparison tells both, in their room, what matched and what did not. Everything is sealed at
rest, on record, and invisible to anyone outside the exercise."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django_tasks_db.models import DBTaskResult

from liaison.crypto import records
from liaison.models import (
    AuditEvent,
    Comparison,
    Dataset,
    ExerciseStatus,
    Message,
    Room,
    User,
)
from liaison.services import exchange, jobs
from liaison.services.exchange import background as exchange_background
from tests import exchange_support as support
from tests.exchange_support import (
    CHINESE_IMPORT_HEADERS,
    OUTCOME_KEYS,
    SAMPLE_FILES,
    expected,
    generate,
    sample,
    to_csv,
    to_xlsx,
    with_headers,
)

store = support.store
pytestmark = pytest.mark.django_db


def _client(login_as: Any, user: User) -> Client:
    return login_as(Client(), user)


def _upload(
    client: Client,
    exercise_id: int,
    name: str,
    data: bytes,
    kind: str,
    columns: dict[str, str] | None = None,
) -> Any:
    form: dict[str, Any] = {"file": SimpleUploadedFile(name, data), "kind": kind}
    if columns is not None:
        form["columns"] = json.dumps(columns)
    return client.post(f"/api/v1/exercises/{exercise_id}/datasets", form)


def _post(client: Client, path: str, body: dict[str, Any]) -> Any:
    return client.post(path, json.dumps(body), content_type="application/json")


@pytest.fixture
def uploaded(room: Room, uk_officer: User, gz_officer: User) -> dict[str, int]:
    """The four sample files, uploaded by the side each belongs to (through the service)."""
    owners = {"exports": uk_officer, "allowed": uk_officer, "imports": gz_officer}
    ids = {}
    for name, (filename, kind) in SAMPLE_FILES.items():
        result = exchange.upload_dataset(
            uploader=owners.get(name, gz_officer),
            exercise_id=room.exercise_id,
            kind=kind,
            filename=filename,
            chunks=[sample(filename)],
        )
        ids[name] = result.dataset.pk
    return ids


def _system_messages(room: Room) -> list[str]:
    return [
        records.open_message_body(message)
        for message in Message.objects.filter(room=room, kind="system").order_by("seq")
    ]


# --- uploading ------------------------------------------------------------------------------------


def test_an_officer_uploads_declarations_and_they_are_sealed_at_rest(
    login_as: Any, room: Room, uk_officer: User, store: Path
) -> None:
    client = _client(login_as, uk_officer)

    response = _upload(
        client,
        room.exercise_id,
        "exports.csv",
        sample("exports_felixstowe.csv"),
        "export_declarations",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["kind"] == "export_declarations"
    assert body["status"] == "accepted"
    assert body["rows"] == 120
    assert body["errors"] == []
    assert body["name"] == "exports.csv"
    assert body["columns"]["container_no"] == "container_no"
    dataset = Dataset.objects.get(pk=body["id"])
    assert dataset.key_room == room
    event = AuditEvent.objects.get(action="dataset.uploaded")
    assert event.details["rows"] == 120
    assert event.target_id == str(dataset.pk)
    files = [path for path in store.rglob("*") if path.is_file()]
    assert len(files) == 2  # the file and its checked rows, both sealed
    stored = b"".join(path.read_bytes() for path in files)
    for plaintext in (b"CMAU3350033", b"Harwich Reclaim", b"exports.csv"):
        assert plaintext not in stored
    assert b"exports.csv" not in bytes(dataset.name_ciphertext)


def test_nansha_uploads_a_workbook_with_chinese_headers(
    login_as: Any, room: Room, gz_officer: User
) -> None:
    rows = with_headers(sample("imports_nansha.csv"), CHINESE_IMPORT_HEADERS)
    workbook = to_xlsx(to_csv(rows), numeric=("商品编码", "净重（千克）"))

    response = _upload(
        _client(login_as, gz_officer),
        room.exercise_id,
        "进口报关单.xlsx",
        workbook,
        "import_declarations",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["format"], body["rows"], body["name"]) == ("xlsx", 117, "进口报关单.xlsx")
    assert body["columns"]["net_mass_kg"] == "净重（千克）"


def test_a_file_with_bad_rows_is_kept_as_rejected_with_every_row_and_column_named(
    login_as: Any, room: Room, uk_officer: User
) -> None:
    data = to_csv(
        [
            ["container_no", "bill_of_lading", "hs_code", "net_mass_kg"],
            ["CMAU3350033", "FXT1", "72044910", "15316"],
            ["CMAU3350034", "FXT2", "72044910", "100"],
            ["MSKU6440390", "FXT3", "72A", "heavy"],
            ["CMAU3350033", "FXT4", "72044910", "1"],
        ]
    )

    response = _upload(
        _client(login_as, uk_officer), room.exercise_id, "bad.csv", data, "export_declarations"
    )

    assert response.status_code == 422
    body = response.json()
    assert body["status"] == "rejected"
    assert [(e["row"], e["column"], e["code"]) for e in body["errors"]] == [
        (3, "container_no", "bad_check_digit"),
        (4, "hs_code", "bad_hs_code"),
        (4, "net_mass_kg", "bad_mass"),
        (5, "container_no", "duplicate_container"),
    ]
    assert all(error["detail"] for error in body["errors"])
    report = _client(login_as, uk_officer).get(f"/api/v1/datasets/{body['id']}").json()
    assert report["errors"] == body["errors"]


def test_a_rejected_data_set_is_never_compared(
    login_as: Any, room: Room, uk_officer: User, uploaded: dict[str, int]
) -> None:
    data = to_csv(
        [["container_no", "bill_of_lading", "hs_code", "net_mass_kg"], ["X", "B", "1", "x"]]
    )
    client = _client(login_as, uk_officer)
    rejected = _upload(client, room.exercise_id, "bad.csv", data, "export_declarations").json()

    response = _post(
        client,
        f"/api/v1/exercises/{room.exercise_id}/comparisons",
        {"exports": rejected["id"], "imports": uploaded["imports"]},
    )

    assert response.status_code == 400
    assert response.json()["error"]["field"] == "exports"
    assert "bad cells" in response.json()["error"]["detail"]


def test_unrecognised_columns_are_refused_naming_them_and_then_mapped(
    login_as: Any, room: Room, uk_officer: User
) -> None:
    data = to_csv([["Box", "Doc", "Tariff", "Kilos"], ["CMAU3350033", "FXT1", "72044910", "15316"]])
    client = _client(login_as, uk_officer)

    refused = _upload(client, room.exercise_id, "odd.csv", data, "export_declarations")
    mapped = _upload(
        client,
        room.exercise_id,
        "odd.csv",
        data,
        "export_declarations",
        columns={
            "container_no": "Box",
            "bill_of_lading": "Doc",
            "hs_code": "Tariff",
            "net_mass_kg": "Kilos",
        },
    )

    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "columns_not_found"
    assert error["missing"] == ["container_no", "bill_of_lading", "hs_code", "net_mass_kg"]
    assert error["headers"] == ["Box", "Doc", "Tariff", "Kilos"]
    assert AuditEvent.objects.filter(action="dataset.refused").count() == 1
    assert mapped.status_code == 201, mapped.content
    assert Dataset.objects.count() == 1


def test_an_unknown_kind_is_refused(
    login_as: Any, room: Room, uk_officer: User, store: Path
) -> None:
    response = _upload(
        _client(login_as, uk_officer),
        room.exercise_id,
        "x.csv",
        sample("prohibited_cn.csv"),
        "waste",
    )
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "kind"
    assert not [path for path in store.rglob("*") if path.is_file()]


def test_a_file_over_the_limit_is_refused(
    login_as: Any, room: Room, uk_officer: User, settings: Any, store: Path
) -> None:
    settings.LIAISON_EXCHANGE_MAX_BYTES = 1024
    data = sample("exports_felixstowe.csv")

    response = _upload(
        _client(login_as, uk_officer), room.exercise_id, "big.csv", data, "export_declarations"
    )

    assert response.status_code == 413
    assert not [path for path in store.rglob("*") if path.is_file()]


def test_a_closed_exercise_takes_no_data(login_as: Any, room: Room, uk_officer: User) -> None:
    room.exercise.status = ExerciseStatus.CLOSED
    room.exercise.save()
    response = _upload(
        _client(login_as, uk_officer),
        room.exercise_id,
        "p.csv",
        sample("prohibited_cn.csv"),
        "prohibited_list",
    )
    assert response.status_code == 409


# --- comparing ------------------------------------------------------------------------------------


def test_the_mirror_comparison_answers_exactly_as_expected_and_tells_the_room(
    login_as: Any,
    room: Room,
    uk_officer: User,
    gz_officer: User,
    uploaded: dict[str, int],
    captured_events: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    client = _client(login_as, gz_officer)

    with django_capture_on_commit_callbacks(execute=True):
        response = _post(
            client,
            f"/api/v1/exercises/{room.exercise_id}/comparisons",
            {
                "exports": uploaded["exports"],
                "imports": uploaded["imports"],
                "prohibited": uploaded["prohibited"],
            },
        )

    assert response.status_code == 201, response.content
    body = response.json()
    answer = expected()
    assert body["status"] == "done"
    assert body["outcomes"] == {key: answer[key] for key in OUTCOME_KEYS}
    assert body["summary"] == {key: len(answer[key]) for key in OUTCOME_KEYS}
    assert body["parameters"] == {"weight_tolerance": 0.05, "hs_digits": 6, "prohibited_list": True}
    assert "rows" not in body
    # The room hears of it, and so does every socket in it.
    (summary,) = _system_messages(room)
    assert f"Mirror comparison #{body['id']}: 77 matched, 18 weight mismatch" in summary
    assert f"/comparisons/{body['id']}/" in summary
    frames = [json.loads(e["frame"]) for e in captured_events.to_group(f"room.{room.pk}")]
    assert [f["message"]["kind"] for f in frames if f["type"] == "message.new"] == ["system"]
    # On record, with the inputs and counts (no container numbers).
    event = AuditEvent.objects.get(action="comparison.run")
    assert event.details["inputs"] == {
        "exports": uploaded["exports"],
        "imports": uploaded["imports"],
        "prohibited": uploaded["prohibited"],
    }
    assert event.details["summary"]["matched"] == 77
    assert "CMAU" not in json.dumps(event.details)
    # Olivia reads the same result, with the rows side by side.
    detail = _client(login_as, uk_officer).get(f"/api/v1/comparisons/{body['id']}").json()
    assert detail["outcomes"] == body["outcomes"]
    assert detail["rows_total"] == 126
    line = next(row for row in detail["rows"] if row["container_no"] == "CMAU3350033")
    assert line["outcome"] == "weight_mismatch"
    assert line["export"]["bill_of_lading"] == line["import"]["bill_of_lading"]
    assert line["export"]["hs_code"] == "72044910"


def test_rows_of_one_outcome_and_pages_of_them(
    login_as: Any, room: Room, gz_officer: User, uploaded: dict[str, int]
) -> None:
    run = exchange.run_mirror_comparison(
        actor=gz_officer,
        exercise_id=room.exercise_id,
        exports=uploaded["exports"],
        imports=uploaded["imports"],
        prohibited=uploaded["prohibited"],
    )
    client = _client(login_as, gz_officer)
    path = f"/api/v1/comparisons/{run.comparison.pk}"

    only = client.get(path, {"outcome": "import_only"}).json()
    page = client.get(path, {"offset": 10, "limit": 5}).json()

    assert [row["container_no"] for row in only["rows"]] == expected()["import_only"]
    assert all(row["export"] is None for row in only["rows"])
    assert (len(page["rows"]), page["rows_total"]) == (5, 126)
    assert client.get(path, {"outcome": "bogus"}).status_code == 400


def test_the_list_comparison_answers_exactly_as_expected(
    login_as: Any, room: Room, uk_officer: User, uploaded: dict[str, int]
) -> None:
    response = _post(
        _client(login_as, uk_officer),
        f"/api/v1/exercises/{room.exercise_id}/list-comparisons",
        {"allowed": uploaded["allowed"], "prohibited": uploaded["prohibited"]},
    )

    assert response.status_code == 201, response.content
    assert response.json()["overlap"] == expected()["allowed_uk_prohibited_cn"]
    (summary,) = _system_messages(room)
    assert "4 HS prefixes" in summary


def test_workbooks_and_csv_files_give_identical_results(
    room: Room, uk_officer: User, gz_officer: User
) -> None:
    def run(convert: Any) -> dict[str, Any]:
        ids = {}
        for name in ("exports", "imports", "prohibited"):
            filename, kind = SAMPLE_FILES[name]
            ids[name] = exchange.upload_dataset(
                uploader=uk_officer,
                exercise_id=room.exercise_id,
                kind=kind,
                filename=filename,
                chunks=[convert(sample(filename))],
            ).dataset.pk
        return exchange.run_mirror_comparison(
            actor=gz_officer, exercise_id=room.exercise_id, **ids
        ).document

    from_csv, from_xlsx = run(lambda data: data), run(to_xlsx)

    assert from_xlsx == from_csv
    assert from_csv["outcomes"]["matched"] == expected()["matched"]


def test_a_generated_exercise_gives_its_answer_through_the_service(
    room: Room, uk_officer: User, gz_officer: User
) -> None:
    generated = generate(count=400, seed=99)
    uploads = {
        "exports": (generated.exports_csv(), "export_declarations", uk_officer),
        "imports": (generated.imports_csv(encoding="gb18030"), "import_declarations", gz_officer),
        "prohibited": (generated.prohibited_csv(), "prohibited_list", gz_officer),
    }
    ids = {
        name: exchange.upload_dataset(
            uploader=who,
            exercise_id=room.exercise_id,
            kind=kind,
            filename=f"{name}.csv",
            chunks=[data],
        ).dataset.pk
        for name, (data, kind, who) in uploads.items()
    }

    run = exchange.run_mirror_comparison(actor=uk_officer, exercise_id=room.exercise_id, **ids)

    assert run.document is not None
    assert run.document["outcomes"] == generated.expected


def test_parameters_are_checked(
    login_as: Any, room: Room, uk_officer: User, uploaded: dict[str, int]
) -> None:
    client = _client(login_as, uk_officer)
    path = f"/api/v1/exercises/{room.exercise_id}/comparisons"
    base = {"exports": uploaded["exports"], "imports": uploaded["imports"]}

    assert _post(client, path, {**base, "weight_tolerance": 1.5}).status_code == 400
    assert _post(client, path, {**base, "hs_digits": 7}).status_code == 400
    swapped = _post(client, path, {"exports": uploaded["imports"], "imports": uploaded["exports"]})
    assert swapped.status_code == 400
    assert swapped.json()["error"]["field"] == "exports"
    loose = _post(client, path, {**base, "weight_tolerance": 1, "hs_digits": 4})
    assert loose.status_code == 201
    assert loose.json()["summary"]["weight_mismatch"] == 0


def test_data_sets_of_another_exercise_cannot_be_named(
    room: Room, uk_officer: User, uploaded: dict[str, int], other_exercise: Any, admin: User
) -> None:
    from liaison.errors import Invalid
    from tests.factories import MembershipFactory, RoomFactory

    RoomFactory(exercise=other_exercise, name="general")
    MembershipFactory(exercise=other_exercise, user=uk_officer)

    with pytest.raises(Invalid, match="no data set"):
        exchange.run_mirror_comparison(
            actor=uk_officer,
            exercise_id=other_exercise.pk,
            exports=uploaded["exports"],
            imports=uploaded["imports"],
        )


# --- downloads ------------------------------------------------------------------------------------


def test_results_download_as_csv_and_xlsx_and_each_download_is_on_record(
    login_as: Any, room: Room, gz_officer: User, uploaded: dict[str, int]
) -> None:
    run = exchange.run_mirror_comparison(
        actor=gz_officer,
        exercise_id=room.exercise_id,
        exports=uploaded["exports"],
        imports=uploaded["imports"],
    )
    client = _client(login_as, gz_officer)
    path = f"/api/v1/comparisons/{run.comparison.pk}/export"

    as_csv = client.get(path)
    as_xlsx = client.get(path, {"format": "xlsx", "outcome": "hs_mismatch"})

    assert as_csv.status_code == 200
    assert as_csv["Content-Type"].startswith("text/csv")
    assert "attachment;" in as_csv["Content-Disposition"]
    assert as_csv.content.decode("utf-8-sig").count("\r\n") == 127  # header and 126 rows
    assert as_xlsx["Content-Type"].startswith("application/vnd.openxmlformats")
    assert as_xlsx.content.startswith(b"PK")
    events = AuditEvent.objects.filter(action="comparison.exported").order_by("seq")
    assert [(e.details["format"], e.details["rows"]) for e in events] == [
        ("csv", 126),
        ("xlsx", 16),
    ]
    assert client.get(path, {"format": "pdf"}).status_code == 400


# --- who may see and do what ----------------------------------------------------------------------


def test_a_non_member_can_neither_see_nor_run_anything(
    login_as: Any,
    room: Room,
    gz_officer: User,
    uploaded: dict[str, int],
    outsider: User,
    admin: User,
) -> None:
    run = exchange.run_mirror_comparison(
        actor=gz_officer,
        exercise_id=room.exercise_id,
        exports=uploaded["exports"],
        imports=uploaded["imports"],
    )
    exercise_id = room.exercise_id
    for stranger in (outsider, admin):
        client = _client(login_as, stranger)
        answers = [
            client.get(f"/api/v1/exercises/{exercise_id}/datasets"),
            _upload(client, exercise_id, "p.csv", sample("prohibited_cn.csv"), "prohibited_list"),
            client.get(f"/api/v1/datasets/{uploaded['exports']}"),
            _post(
                client,
                f"/api/v1/exercises/{exercise_id}/list-comparisons",
                {"allowed": uploaded["allowed"], "prohibited": uploaded["prohibited"]},
            ),
            _post(
                client,
                f"/api/v1/exercises/{exercise_id}/comparisons",
                {"exports": uploaded["exports"], "imports": uploaded["imports"]},
            ),
            client.get(f"/api/v1/exercises/{exercise_id}/comparisons"),
            client.get(f"/api/v1/comparisons/{run.comparison.pk}"),
            client.get(f"/api/v1/comparisons/{run.comparison.pk}/export"),
        ]
        missing = client.get("/api/v1/comparisons/999999")
        assert [answer.status_code for answer in answers] == [404] * len(answers)
        assert {json.dumps(a.json()["error"]) for a in answers[-2:-1]} == {
            json.dumps(missing.json()["error"])
        }
    assert Dataset.objects.count() == 4
    assert Comparison.objects.count() == 1
    assert AuditEvent.objects.filter(action="access.denied").count() >= 16


def test_an_observer_reads_results_but_runs_nothing(
    login_as: Any, room: Room, gz_officer: User, gz_observer: User, uploaded: dict[str, int]
) -> None:
    run = exchange.run_mirror_comparison(
        actor=gz_officer,
        exercise_id=room.exercise_id,
        exports=uploaded["exports"],
        imports=uploaded["imports"],
    )
    client = _client(login_as, gz_observer)

    assert client.get(f"/api/v1/comparisons/{run.comparison.pk}").status_code == 200
    assert len(client.get(f"/api/v1/exercises/{room.exercise_id}/datasets").json()["datasets"]) == 4
    refused = _post(
        client,
        f"/api/v1/exercises/{room.exercise_id}/comparisons",
        {"exports": uploaded["exports"], "imports": uploaded["imports"]},
    )
    assert refused.status_code == 403
    upload = _upload(
        client, room.exercise_id, "p.csv", sample("prohibited_cn.csv"), "prohibited_list"
    )
    assert upload.status_code == 403


def test_an_auditor_reads_a_comparison_and_the_read_is_on_record(
    login_as: Any, room: Room, gz_officer: User, auditor: User, uploaded: dict[str, int]
) -> None:
    run = exchange.run_mirror_comparison(
        actor=gz_officer,
        exercise_id=room.exercise_id,
        exports=uploaded["exports"],
        imports=uploaded["imports"],
    )
    client = _client(login_as, auditor)

    response = client.get(f"/api/v1/comparisons/{run.comparison.pk}")

    assert response.status_code == 200
    assert AuditEvent.objects.filter(action="comparison.viewed", actor=auditor).count() == 1
    refused = _upload(
        client, room.exercise_id, "p.csv", sample("prohibited_cn.csv"), "prohibited_list"
    )
    assert refused.status_code == 403


# --- large inputs run in the background -----------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_large_comparison_runs_as_a_job_and_reports_progress(
    login_as: Any, room: Room, uk_officer: User, gz_officer: User, settings: Any
) -> None:
    settings.LIAISON_EXCHANGE_BACKGROUND_ROWS = 100
    ids = {}
    for name in ("exports", "imports", "prohibited"):
        filename, kind = SAMPLE_FILES[name]
        ids[name] = exchange.upload_dataset(
            uploader=uk_officer,
            exercise_id=room.exercise_id,
            kind=kind,
            filename=filename,
            chunks=[sample(filename)],
        ).dataset.pk
    client = _client(login_as, gz_officer)

    response = _post(client, f"/api/v1/exercises/{room.exercise_id}/comparisons", ids)

    assert response.status_code == 202, response.content
    started = response.json()
    assert started["status"] == "running"
    job = DBTaskResult.objects.get()
    assert (job.task_path, job.args_kwargs["args"]) == (
        "liaison.services.exchange.background.comparison_job",
        [started["id"]],
    )
    assert "started" in _system_messages(room)[0]
    assert jobs.Worker(batch=True, schedule=False).run() == 1
    # Run again (a retry after a worker was thought dead): a finished comparison stays as it is.
    finished = Comparison.objects.get(pk=started["id"]).result_storage_name
    assert exchange_background.comparison_job.call(started["id"])["status"] == "done"
    assert Comparison.objects.get(pk=started["id"]).result_storage_name == finished
    done = client.get(f"/api/v1/comparisons/{started['id']}").json()
    assert done["status"] == "done"
    assert done["progress"] == 100
    assert done["outcomes"]["weight_mismatch"] == expected()["weight_mismatch"]
    messages = _system_messages(room)
    assert len(messages) == 2
    assert "started" in messages[0]
    assert "77 matched" in messages[1]
    assert AuditEvent.objects.get(action="comparison.run").details["background"] is True
