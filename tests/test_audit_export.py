"""Signed exports: they verify offline (command and standalone script) and fail after any change."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.core.management.base import CommandError

from liaison.audit import signing as audit_signing
from liaison.models import AuditEvent, Exercise, Message, Room, User
from liaison.services import exercises as exercise_service
from liaison.services import keys as key_service
from liaison.services import messaging
from tests.audit_helpers import say

pytestmark = pytest.mark.django_db

SCRIPT = Path(django_settings.BASE_DIR) / "liaison" / "audit" / "offline_verifier.py"


@pytest.fixture
def conversation(
    uk_officer: User, gz_officer: User, uk_coordinator: User, room: Room, lane_room: Room
) -> Room:
    """A short exchange with an edited message (two revisions) and a deleted one."""
    say(uk_officer, room, "Container MSCU1234567 leaves Felixstowe tonight.")
    say(gz_officer, room, "南沙海关已收到，将于周五查验。")
    say(uk_officer, room, "Weight declared: 21,400 kg")
    messaging.edit_message(user=uk_officer, room_id=room.pk, seq=3, body="Weight: 21,450 kg")
    messaging.edit_message(user=uk_officer, room_id=room.pk, seq=3, body="Weight: 21,460 kg")
    say(gz_officer, room, "Wrong room, sorry")
    messaging.delete_message(user=uk_coordinator, room_id=room.pk, seq=4)
    say(gz_officer, lane_room, "Lane check complete.")
    return room


def export_to(path: Path, code: str = "CFE-TEST-WASTE") -> Path:
    call_command("audit", "export", "--exercise", code, "--out", str(path))
    return path


def run_script(
    directory: Path, key: str, tmp_path: Path, *, as_module: bool = False
) -> subprocess.CompletedProcess[str]:
    """The standalone verifier in its own interpreter, with Django made unimportable; run by
    its path (as an outside party would) or, with ``as_module``, with ``python -m`` from a
    checkout."""
    poison = tmp_path / "no-django" / "django"
    poison.mkdir(parents=True, exist_ok=True)
    (poison / "__init__.py").write_text("raise ImportError('verify_export must not need Django')\n")
    search_path = [str(poison.parent)]
    program = [str(SCRIPT)]
    if as_module:
        search_path.append(str(django_settings.BASE_DIR))
        program = ["-m", "liaison.audit.offline_verifier"]
    return subprocess.run(
        [sys.executable, *program, str(directory), "--public-key", key],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={"PYTHONPATH": os.pathsep.join(search_path), "PATH": "/usr/bin:/bin"},
        check=False,
    )


def flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_an_export_verifies_with_the_command_and_the_standalone_script(
    conversation: Room, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = export_to(tmp_path / "export")
    key = audit_signing.public_key_b64()

    assert sorted(p.name for p in out.iterdir()) == [
        "events.jsonl",
        "manifest.json",
        "manifest.sig",
        "transcript.jsonl",
    ]
    call_command("audit", "verify-export", str(out), "--public-key", key)
    assert "OK: export of CFE-TEST-WASTE verified" in capsys.readouterr().out
    script = run_script(out, key, tmp_path)
    assert script.returncode == 0, script.stdout + script.stderr
    assert "OK: export of CFE-TEST-WASTE verified" in script.stdout
    assert "5 messages in 2 rooms" in script.stdout


def test_the_offline_verifier_runs_as_a_module_without_django(
    conversation: Room, tmp_path: Path
) -> None:
    out = export_to(tmp_path / "export")
    script = run_script(out, audit_signing.public_key_b64(), tmp_path, as_module=True)
    assert script.returncode == 0, script.stdout + script.stderr
    assert "OK: export of CFE-TEST-WASTE verified" in script.stdout
    flip_one_byte(out / "transcript.jsonl")
    script = run_script(out, audit_signing.public_key_b64(), tmp_path, as_module=True)
    assert script.returncode == 1
    assert "transcript.jsonl does not match its SHA-256" in script.stdout


def test_the_public_key_may_be_given_as_a_file(conversation: Room, tmp_path: Path) -> None:
    out = export_to(tmp_path / "export")
    key_file = tmp_path / "audit.pub"
    key_file.write_text(audit_signing.public_key_pem())
    script = run_script(out, str(key_file), tmp_path)
    assert script.returncode == 0, script.stdout + script.stderr


@pytest.mark.parametrize(
    ("name", "complaint"),
    [
        ("events.jsonl", "does not match its SHA-256"),
        ("transcript.jsonl", "does not match its SHA-256"),
        ("manifest.json", "does not verify"),
        ("manifest.sig", ""),
    ],
)
def test_an_export_with_one_byte_changed_fails(
    conversation: Room, tmp_path: Path, name: str, complaint: str
) -> None:
    out = export_to(tmp_path / "export")
    key = audit_signing.public_key_b64()
    flip_one_byte(out / name)

    with pytest.raises(CommandError, match="does not verify") as failure:
        call_command("audit", "verify-export", str(out), "--public-key", key)
    assert failure.value.returncode == 1
    script = run_script(out, key, tmp_path)
    assert script.returncode == 1, script.stdout + script.stderr
    assert "FAILED" in script.stdout
    assert complaint in script.stdout


def test_an_export_checked_with_another_key_fails(conversation: Room, tmp_path: Path) -> None:
    out = export_to(tmp_path / "export")
    other = audit_signing.public_key_b64(
        audit_signing._private_from_text(
            audit_signing.new_private_key_text(), source="test"
        ).public_key()
    )
    script = run_script(out, other, tmp_path)
    assert script.returncode == 1
    assert "signed by another key" in script.stdout


def test_a_rewritten_and_rehashed_export_still_fails_on_the_signature(
    conversation: Room, tmp_path: Path
) -> None:
    """Someone who edits a line and fixes the manifest's checksum cannot fix the signature."""
    out = export_to(tmp_path / "export")
    transcript = out / "transcript.jsonl"
    transcript.write_text(transcript.read_text().replace("21,460", "20,000"))
    manifest = json.loads((out / "manifest.json").read_text())
    for entry in manifest["files"]:
        if entry["name"] == "transcript.jsonl":
            entry["sha256"] = hashlib.sha256(transcript.read_bytes()).hexdigest()
            entry["size"] = transcript.stat().st_size
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")

    script = run_script(out, audit_signing.public_key_b64(), tmp_path)

    assert script.returncode == 1
    assert "does not verify" in script.stdout


def test_an_unusable_key_is_a_usage_error(conversation: Room, tmp_path: Path) -> None:
    out = export_to(tmp_path / "export")
    script = run_script(out, "not-a-key", tmp_path)
    assert script.returncode == 2
    assert "Unusable public key" in script.stderr
    with pytest.raises(CommandError, match="Unusable public key"):
        call_command("audit", "verify-export", str(out), "--public-key", "not-a-key")


def test_a_directory_that_is_not_an_export_fails(tmp_path: Path) -> None:
    script = run_script(tmp_path, audit_signing.public_key_b64(), tmp_path)
    assert script.returncode == 1
    assert "not an export" in script.stdout


def test_the_transcript_shows_edits_revisions_and_deletions(
    conversation: Room, tmp_path: Path
) -> None:
    out = export_to(tmp_path / "export")
    lines = [json.loads(line) for line in (out / "transcript.jsonl").read_text().splitlines()]
    rooms = [line for line in lines if line["type"] == "room"]
    messages = {(m["room"], m["seq"]): m for m in lines if m["type"] == "message"}

    assert [r["name"] for r in rooms] == ["general", "felixstowe-nansha"]
    assert messages[(conversation.pk, 2)]["body"] == "南沙海关已收到，将于周五查验。"
    edited = messages[(conversation.pk, 3)]
    assert edited["body"] == "Weight declared: 21,400 kg"
    assert edited["edited"] is True
    assert [r["body"] for r in edited["revisions"]] == ["Weight: 21,450 kg", "Weight: 21,460 kg"]
    assert edited["current_body"] == "Weight: 21,460 kg"
    deleted = messages[(conversation.pk, 4)]
    assert deleted["deleted"] is True
    assert deleted["deleted_by"]["email"] == "james@ukbf.example"
    assert deleted["body"] == "Wrong room, sorry"
    assert deleted["sender"]["email"] == "li.wei@gz.example"
    assert all(m["content"] == "ok" for m in messages.values())


def test_the_events_file_holds_the_exercises_events_and_the_transcript_every_message_link(
    conversation: Room, tmp_path: Path
) -> None:
    out = export_to(tmp_path / "export")
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    stored = {e.seq: e.hash for e in AuditEvent.objects.filter(exercise=conversation.exercise)}

    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    assert {e["seq"]: e["hash"] for e in events}.items() <= stored.items()
    # Changes to a message are events; sending one is not (its record is the room chain).
    assert sorted(e["action"] for e in events if e["target_type"] == "message") == [
        "message.deleted",
        "message.edited",
        "message.edited",
    ]
    assert all("Weight" not in json.dumps(e) for e in events)

    # All five messages of both rooms are in the transcript with their chain links as stored.
    lines = [json.loads(line) for line in (out / "transcript.jsonl").read_text().splitlines()]
    exported = {
        (m["room"], m["seq"]): (m["prev_hash"], m["chain_hash"])
        for m in lines
        if m["type"] == "message"
    }
    chained = Message.objects.filter(room__exercise=conversation.exercise)
    assert len(exported) == 5
    assert exported == {(m.room_id, m.seq): (m.prev_hash, m.chain_hash) for m in chained}


def test_the_export_is_itself_audited_with_the_manifest_hash(
    conversation: Room, tmp_path: Path
) -> None:
    out = export_to(tmp_path / "export")
    event = AuditEvent.objects.filter(action="audit.exported").get()
    manifest_sha = hashlib.sha256((out / "manifest.json").read_bytes()).hexdigest()

    assert event.exercise_id == conversation.exercise_id
    assert event.details["manifest_sha256"] == manifest_sha
    assert (event.details["via"], event.details["messages"]) == ("cli", 5)


def test_the_manifest_names_the_heads_time_range_and_key(
    conversation: Room, lane_room: Room, tmp_path: Path
) -> None:
    out = export_to(tmp_path / "export")
    manifest = json.loads((out / "manifest.json").read_text())
    conversation.refresh_from_db()

    assert manifest["exercise"]["code"] == "CFE-TEST-WASTE"
    assert manifest["chain"]["rooms"][str(conversation.pk)] == {
        "name": "general",
        "seq": 4,
        "hash": conversation.chain_head,
    }
    assert manifest["time_range"]["from"] <= manifest["time_range"]["to"]
    assert manifest["signature"]["public_key"] == audit_signing.public_key_b64()
    assert {f["name"] for f in manifest["files"]} == {"events.jsonl", "transcript.jsonl"}


def test_shredded_content_is_marked_and_the_export_still_verifies(
    conversation: Room, admin: User, tmp_path: Path
) -> None:
    exercise = conversation.exercise
    exercise_service.close_exercise(actor=admin, exercise=exercise)
    key_service.shred_exercise(
        actor=admin, exercise=exercise, waive_export="no export is needed in this test"
    )

    out = export_to(tmp_path / "export")

    lines = [json.loads(line) for line in (out / "transcript.jsonl").read_text().splitlines()]
    messages = [line for line in lines if line["type"] == "message"]
    assert {m["content"] for m in messages} == {"shredded"}
    assert all(m["body"] is None for m in messages)
    assert {r["content"] for m in messages for r in m["revisions"]} == {"shredded"}
    script = run_script(out, audit_signing.public_key_b64(), tmp_path)
    assert script.returncode == 0, script.stdout


def test_export_refuses_a_directory_holding_an_export(conversation: Room, tmp_path: Path) -> None:
    out = export_to(tmp_path / "export")
    with pytest.raises(CommandError, match="already holds"):
        export_to(out)


def test_export_of_an_unknown_exercise_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="no exercise 'CFE-NOPE'"):
        export_to(tmp_path / "export", code="CFE-NOPE")


def test_an_empty_exercise_exports_and_verifies(other_exercise: Exercise, tmp_path: Path) -> None:
    out = export_to(tmp_path / "export", code=other_exercise.code)
    script = run_script(out, audit_signing.public_key_b64(), tmp_path)
    assert script.returncode == 0, script.stdout
    assert "0 messages in 0 rooms" in script.stdout


def test_the_standalone_verifier_recomputes_each_message_link_with_its_marking_and_mentions(
    conversation: Room, tmp_path: Path
) -> None:
    from liaison.audit.offline_verifier import message_link

    out = export_to(tmp_path / "export")
    lines = [json.loads(line) for line in (out / "transcript.jsonl").read_text().splitlines()]
    messages = [line for line in lines if line["type"] == "message"]
    assert messages
    assert all(message_link(line) == line["chain_hash"] for line in messages)
    assert {line["link_version"] for line in messages} == {2}
    for field, value in (
        ("marking", "UNMARKED"),
        ("mentions", {"room": True}),
        ("reply_to_seq", 9),
    ):
        assert message_link(messages[0] | {field: value}) != messages[0]["chain_hash"], field
