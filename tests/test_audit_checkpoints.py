"""Automatic signed checkpoints: every Nth audit event signs the chain heads once it commits
(``LIAISON_AUDIT_CHECKPOINT_EVERY``), so a cut tail is caught between scheduled checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest

from liaison import audit
from liaison.audit import checkpoints as audit_checkpoints
from liaison.audit import verify as audit_verify
from liaison.models import AuditEvent
from tests.audit_helpers import record_events, triggers_lifted

# Each event commits on its own, as in production, so its after-commit checkpoint runs.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def checkpoint_dir(checkpoint_dir: Path, settings) -> Path:
    settings.LIAISON_AUDIT_CHECKPOINT_EVERY = 5
    return checkpoint_dir


def checkpointed_seqs() -> list[int]:
    return [
        audit_checkpoints.read_checkpoint(name).audit_seq
        for name in audit_checkpoints.checkpoint_names()
    ]


def test_every_fifth_event_writes_a_signed_checkpoint_of_its_seq() -> None:
    record_events(4)
    assert checkpointed_seqs() == []
    record_events(8)
    assert checkpointed_seqs() == [5, 10]
    latest = audit_checkpoints.latest_checkpoint()
    assert latest is not None
    assert latest.audit_hash == AuditEvent.objects.get(seq=10).hash
    assert audit_verify.verify().ok


def test_a_tail_cut_after_an_automatic_checkpoint_is_caught() -> None:
    record_events(12)  # checkpoints at 5 and 10, none written by hand
    with triggers_lifted():
        AuditEvent.objects.filter(seq__gt=7).delete()

    report = audit_verify.verify()

    assert not report.ok
    found = report.first_break
    assert (found.chain, found.seq, found.reason) == ("audit", 8, "head_behind_checkpoint")


def test_zero_turns_the_automatic_checkpoints_off(settings) -> None:
    settings.LIAISON_AUDIT_CHECKPOINT_EVERY = 0
    record_events(12)
    assert checkpointed_seqs() == []


def test_a_checkpoint_that_cannot_be_written_never_undoes_the_event(monkeypatch, caplog) -> None:
    def broken(**kwargs: object) -> None:
        raise OSError("checkpoint store unavailable")

    monkeypatch.setattr(audit_checkpoints, "write_checkpoint", broken)
    record_events(5)
    assert AuditEvent.objects.count() == 5
    assert "checkpoint store unavailable" in caplog.text


def test_an_event_recorded_inside_a_rolled_back_transaction_writes_no_checkpoint() -> None:
    from django.db import transaction

    def failing_action() -> None:
        with transaction.atomic():
            audit.record(actor=None, action="test.event")
            raise RuntimeError("the action failed")

    record_events(4)
    with pytest.raises(RuntimeError):
        failing_action()
    assert checkpointed_seqs() == []
    assert AuditEvent.objects.count() == 4
