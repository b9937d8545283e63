"""verify_audit: a clean log passes; every kind of tampering is named at its seq."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from liaison import audit
from liaison.audit import checkpoints as audit_checkpoints
from liaison.audit import verify as audit_verify
from liaison.models import AuditEvent, Exercise, Message, Room, User
from liaison.services.messaging import send_message
from tests.audit_helpers import (
    head_seq,
    record_events,
    rehash_from,
    say,
    triggers_lifted,
)

pytestmark = pytest.mark.django_db


def only_break(report: audit_verify.VerifyReport) -> audit_verify.Break:
    assert not report.ok, report.summary()
    assert len(report.breaks) == 1, report.breaks
    return report.breaks[0]


def test_a_clean_log_and_clean_rooms_verify(uk_officer: User, gz_officer: User, room: Room) -> None:
    record_events(30)
    say(uk_officer, room, "Container MSCU1234567 loaded at Felixstowe.")
    say(gz_officer, room, "收到，南沙港将查验。")
    audit_checkpoints.write_checkpoint()
    say(uk_officer, room, "Bill of lading follows.")

    report = audit_verify.verify()

    assert report.ok, report.summary()
    assert report.events_checked == head_seq() == report.head_seq
    assert report.messages_checked == 3
    assert report.checkpoints_checked == 1
    assert "intact" in report.summary()


def test_an_empty_log_verifies_with_a_warning_that_no_checkpoint_exists() -> None:
    report = audit_verify.verify()
    assert report.ok
    assert report.events_checked == 0
    assert any("No signed checkpoint" in w for w in report.warnings)


def test_a_deleted_event_is_reported_missing_at_its_seq() -> None:
    record_events(20)
    with triggers_lifted():
        AuditEvent.objects.filter(seq=7).delete()

    found = only_break(audit_verify.verify())

    assert (found.chain, found.seq, found.reason) == ("audit", 7, "missing")
    assert "goes from 6 to 8" in found.detail


def test_an_altered_field_is_reported_at_its_seq() -> None:
    record_events(20)
    with triggers_lifted():
        AuditEvent.objects.filter(seq=12).update(actor_label="someone-else@example.org")

    found = only_break(audit_verify.verify())

    assert (found.chain, found.seq, found.reason) == ("audit", 12, "altered")


def test_altered_details_are_reported_at_their_seq() -> None:
    record_events(10)
    with triggers_lifted():
        AuditEvent.objects.filter(seq=4).update(details={"n": 999})

    found = only_break(audit_verify.verify())

    assert (found.seq, found.reason) == (4, "altered")


def test_two_swapped_events_are_reported_reordered_at_the_first_of_them() -> None:
    record_events(20)
    with triggers_lifted():
        AuditEvent.objects.filter(seq=9).update(seq=10**9)
        AuditEvent.objects.filter(seq=10).update(seq=9)
        AuditEvent.objects.filter(seq=10**9).update(seq=10)

    found = only_break(audit_verify.verify())

    assert (found.chain, found.seq, found.reason) == ("audit", 9, "reordered")
    assert "stored at seq 10" in found.detail


def test_an_event_removed_with_later_ones_renumbered_is_a_broken_link() -> None:
    record_events(12)
    with triggers_lifted():
        AuditEvent.objects.filter(seq=5).delete()
        for seq in range(6, 13):
            AuditEvent.objects.filter(seq=seq).update(seq=seq - 1)

    found = only_break(audit_verify.verify())

    assert (found.seq, found.reason) == (5, "link_broken")


def test_a_message_removed_from_a_room_is_reported_at_its_seq(
    uk_officer: User, room: Room, lane_room: Room
) -> None:
    say(uk_officer, room, "one", "two", "three", "four")
    say(uk_officer, lane_room, "lane one")
    Message.objects.filter(room=room, seq=2).delete()

    found = only_break(audit_verify.verify())

    assert (found.chain, found.room_id, found.seq, found.reason) == ("room", room.pk, 2, "removed")
    assert found.room == "CFE-TEST-WASTE/general"


def test_the_last_message_removed_from_a_room_is_reported(uk_officer: User, room: Room) -> None:
    say(uk_officer, room, "one", "two", "three")
    Message.objects.filter(room=room, seq=3).delete()

    found = only_break(audit_verify.verify())

    assert (found.chain, found.seq, found.reason) == ("room", 3, "removed")


def test_a_message_altered_in_place_is_reported(uk_officer: User, room: Room) -> None:
    first, second = say(uk_officer, room, "one", "two")
    Message.objects.filter(pk=second.pk).update(ciphertext=bytes(first.ciphertext))

    found = only_break(audit_verify.verify())

    assert (found.chain, found.seq, found.reason) == ("room", 2, "altered")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("marking", "OFFICIAL"),
        ("reply_to_seq", 1),
        ("mentions", {"users": [], "agencies": ["GACC"], "room": False}),
        ("link_version", 1),  # claiming the older link, which covered less
    ],
)
def test_a_message_s_marking_reply_or_mentions_altered_is_reported(
    uk_officer: User, room: Room, exercise: Exercise, field: str, value: Any
) -> None:
    exercise.markings = ["OFFICIAL", "OFFICIAL-SENSITIVE"]
    exercise.save(update_fields=["markings"])
    say(uk_officer, room, "one")
    sent = send_message(
        sender=uk_officer,
        room_id=room.pk,
        client_id="marked",
        body="two",
        marking="OFFICIAL-SENSITIVE",
    ).message
    assert audit_verify.verify().ok
    Message.objects.filter(pk=sent.pk).update(**{field: value})

    found = only_break(audit_verify.verify())

    assert (found.chain, found.seq, found.reason) == ("room", 2, "altered")


def test_messages_chained_before_the_second_link_version_still_verify(
    uk_officer: User, room: Room
) -> None:
    first, second = say(uk_officer, room, "one", "two")
    # As a message stored before links covered the marking would be: its link without them.
    Message.objects.filter(pk=first.pk).update(link_version=1, chain_hash="")
    old = Message.objects.get(pk=first.pk)
    old.chain_hash = audit.message_link_of(old)
    Message.objects.filter(pk=first.pk).update(chain_hash=old.chain_hash)
    Message.objects.filter(pk=second.pk).update(prev_hash=old.chain_hash)
    fixed = Message.objects.get(pk=second.pk)
    Message.objects.filter(pk=second.pk).update(chain_hash=audit.message_link_of(fixed))
    Room.objects.filter(pk=room.pk).update(chain_head=audit.message_link_of(fixed))

    assert audit_verify.verify().ok


def test_the_last_ten_events_cut_off_are_caught_by_the_checkpoint() -> None:
    record_events(40)
    audit_checkpoints.write_checkpoint()
    with triggers_lifted():
        AuditEvent.objects.filter(seq__gt=30).delete()

    found = only_break(audit_verify.verify())

    assert (found.chain, found.seq, found.reason) == ("audit", 31, "head_behind_checkpoint")
    assert "31–40" in found.detail


def test_a_cut_tail_without_a_checkpoint_goes_unnoticed_which_is_why_checkpoints_exist() -> None:
    record_events(20)
    with triggers_lifted():
        AuditEvent.objects.filter(seq__gt=10).delete()
    report = audit_verify.verify()
    assert report.ok
    assert report.warnings


def test_a_chain_recomputed_after_an_edit_is_caught_by_the_checkpoint() -> None:
    record_events(20)
    audit_checkpoints.write_checkpoint()
    record_events(20)
    audit_checkpoints.write_checkpoint()
    with triggers_lifted():
        AuditEvent.objects.filter(seq=30).update(action="nothing.to.see")
        rehash_from(30)
    assert audit_verify.verify(checkpoints=False).ok  # the chain alone looks perfect

    found = only_break(audit_verify.verify())

    assert (found.chain, found.seq, found.reason) == ("audit", 40, "checkpoint_mismatch")
    assert "still matches the checkpoint at seq 20" in found.detail


def test_a_room_chain_recomputed_and_cut_is_caught_by_the_checkpoint(
    uk_officer: User, room: Room
) -> None:
    say(uk_officer, room, "one", "two", "three")
    audit_checkpoints.write_checkpoint()
    Message.objects.filter(room=room, seq=3).delete()
    second = Message.objects.get(room=room, seq=2)
    Room.objects.filter(pk=room.pk).update(last_seq=2, chain_head=second.chain_hash)

    found = only_break(audit_verify.verify())

    assert (found.chain, found.seq, found.reason) == ("room", 3, "head_behind_checkpoint")


def test_a_forged_checkpoint_fails_its_signature(checkpoint_dir: Path) -> None:
    record_events(10)
    written = audit_checkpoints.write_checkpoint()
    assert written is not None
    path = checkpoint_dir / written.name
    document = json.loads(path.read_text())
    document["checkpoint"]["audit"]["seq"] = 5
    path.write_text(json.dumps(document))

    found = only_break(audit_verify.verify())

    assert (found.chain, found.reason) == ("checkpoint", "checkpoint_signature_invalid")
    assert written.name in found.detail


def test_a_garbled_checkpoint_file_is_reported(checkpoint_dir: Path) -> None:
    record_events(3)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    (checkpoint_dir / "checkpoint-000000000003-20260101T000000000000Z.json").write_text("{nope")

    found = only_break(audit_verify.verify())

    assert found.reason == "checkpoint_unreadable"


def test_a_checkpoint_signed_by_another_key_is_refused(settings, tmp_path: Path) -> None:
    from liaison.audit.signing import new_private_key_text, reset_signing_key_cache

    record_events(5)
    audit_checkpoints.write_checkpoint()
    other = tmp_path / "other-key"
    other.write_text(new_private_key_text())
    settings.LIAISON_AUDIT_SIGNING_KEY_FILE = str(other)
    reset_signing_key_cache()

    found = only_break(audit_verify.verify())

    assert found.reason == "checkpoint_signature_invalid"


def test_verify_with_an_exercise_checks_only_its_rooms(
    uk_officer: User, outsider: User, room: Room, other_exercise: Exercise
) -> None:
    from tests.factories import RoomFactory

    other_room = RoomFactory(exercise=other_exercise, name="general")
    say(uk_officer, room, "ours")
    say(outsider, other_room, "theirs", "and more")
    # Sending writes no audit event (a message's record is its room chain): one event each.
    audit.record(actor=uk_officer, action="test.ours", exercise=room.exercise)
    audit.record(actor=outsider, action="test.theirs", exercise=other_exercise)
    Message.objects.filter(room=other_room, seq=1).delete()

    scoped = audit_verify.verify(exercise=room.exercise)
    full = audit_verify.verify()

    assert scoped.ok
    assert scoped.rooms_checked == 1
    assert scoped.messages_checked == 1
    assert scoped.exercise_events == 1
    assert not full.ok
    assert full.breaks[0].room_id == other_room.pk


# --- the commands ----------------------------------------------------------------------------


def test_verify_audit_command_passes_on_a_clean_log(capsys: pytest.CaptureFixture[str]) -> None:
    record_events(5)
    call_command("verify_audit")
    assert "Audit chain intact: 5 events up to seq 5" in capsys.readouterr().out


def test_verify_audit_command_fails_naming_the_first_broken_seq(
    capsys: pytest.CaptureFixture[str],
) -> None:
    record_events(10)
    with triggers_lifted():
        AuditEvent.objects.filter(seq=6).update(ip="10.9.8.7")

    with pytest.raises(CommandError, match="broken at seq 6") as failure:
        call_command("verify_audit")

    assert failure.value.returncode == 1
    out = capsys.readouterr().out
    assert "first broken seq 6: altered" in out


def test_verify_audit_json_names_the_break(capsys: pytest.CaptureFixture[str]) -> None:
    record_events(10)
    with triggers_lifted():
        AuditEvent.objects.filter(seq=3).delete()

    with pytest.raises(CommandError):
        call_command("verify_audit", "--json")

    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    assert report["breaks"][0] | {"detail": ""} == {
        "chain": "audit",
        "seq": 3,
        "reason": "missing",
        "detail": "",
        "room_id": None,
        "room": "",
    }


def test_verify_audit_refuses_an_unknown_exercise() -> None:
    with pytest.raises(CommandError, match="no exercise 'CFE-NOPE'"):
        call_command("verify_audit", "--exercise", "CFE-NOPE")


def test_verify_audit_accepts_an_outside_public_key(capsys: pytest.CaptureFixture[str]) -> None:
    from liaison.audit.signing import public_key_b64

    record_events(4)
    audit_checkpoints.write_checkpoint()
    call_command("verify_audit", "--public-key", public_key_b64())
    assert "consistent with 1 signed checkpoint" in capsys.readouterr().out


def test_audit_verify_is_the_same_command_as_verify_audit(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from liaison.audit.signing import public_key_b64

    record_events(4)
    audit_checkpoints.write_checkpoint()
    call_command("audit", "verify", "--public-key", public_key_b64())
    assert "Audit chain intact: 4 events up to seq 4" in capsys.readouterr().out
    call_command("audit", "verify", "--json")
    assert json.loads(capsys.readouterr().out)["checkpoints_checked"] == 1
    with triggers_lifted():
        AuditEvent.objects.filter(seq=2).update(ip="10.9.8.7")
    with pytest.raises(CommandError, match="broken at seq 2") as failure:
        call_command("audit", "verify", "--no-checkpoints")
    assert failure.value.returncode == 1
    with pytest.raises(CommandError, match="no exercise 'CFE-NOPE'"):
        call_command("audit", "verify", "--exercise", "CFE-NOPE")


def test_checkpoint_command_writes_a_signed_file_outside_the_database(
    checkpoint_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record_events(3)
    call_command("audit", "checkpoint")

    files = list(checkpoint_dir.glob("checkpoint-*.json"))
    assert len(files) == 1
    body = json.loads(files[0].read_text())["checkpoint"]
    assert body["audit"] == {"seq": 3, "hash": AuditEvent.objects.get(seq=3).hash}
    assert "audit seq 3" in capsys.readouterr().out


def test_checkpoint_if_changed_skips_an_unmoved_chain(checkpoint_dir: Path) -> None:
    record_events(3)
    call_command("audit", "checkpoint", "--if-changed")
    call_command("audit", "checkpoint", "--if-changed")
    assert len(list(checkpoint_dir.glob("checkpoint-*.json"))) == 1
    record_events(1)
    call_command("audit", "checkpoint", "--if-changed")
    assert len(list(checkpoint_dir.glob("checkpoint-*.json"))) == 2


def test_checkpoint_loop_stops_on_its_own_after_count(checkpoint_dir: Path) -> None:
    record_events(2)
    call_command("audit", "checkpoint", "--every", "0.01", "--count", "3")
    # Nothing moved between rounds: one checkpoint, then two "unchanged" rounds.
    assert len(list(checkpoint_dir.glob("checkpoint-*.json"))) == 1


def test_checkpoint_loop_refuses_nonsense_intervals() -> None:
    with pytest.raises(CommandError, match="positive"):
        call_command("audit", "checkpoint", "--every", "0", "--count", "1")
    with pytest.raises(CommandError, match="only makes sense with --every"):
        call_command("audit", "checkpoint", "--count", "2")


def test_a_gap_wider_than_a_read_window_is_still_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit_verify, "CHUNK", 3)
    record_events(14)
    with triggers_lifted():
        AuditEvent.objects.filter(seq__gte=4, seq__lte=10).delete()

    found = only_break(audit_verify.verify())

    assert (found.seq, found.reason) == (4, "missing")
    assert "seqs 4–10 are missing" in found.detail


def test_a_long_chain_read_in_small_windows_verifies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit_verify, "CHUNK", 4)
    record_events(17)
    report = audit_verify.verify()
    assert report.ok
    assert report.events_checked == 17
