"""Retention (``attachments/retention.py``, ``manage.py purge_uploads``): uploads never sent are
purged after a day, orphaned blobs are swept, and a purged upload cannot be claimed."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from liaison.errors import Invalid
from liaison.models import Attachment, AuditEvent, Room, User
from tests import attachments_support as support
from tests.attachments_support import download, png_bytes, send, stored_files, upload

# The attachment fixtures (``store`` keeps each test's files in a store of its own).
store = support.store
olivia = support.olivia


# --- purging --------------------------------------------------------------------------------------


def test_purge_uploads_removes_unsent_files_after_a_day(
    olivia: Client, uk_officer: User, room: Room, store: Path
) -> None:
    stale = upload(olivia, room, "stale.png", png_bytes(), "image/png").json()["attachment"]
    sent = upload(olivia, room, "sent.txt", b"sent\n").json()["attachment"]
    fresh = upload(olivia, room, "fresh.txt", b"fresh\n").json()["attachment"]
    send(uk_officer, room, [sent["id"]])
    a_day_ago = timezone.now() - timezone.timedelta(hours=25)
    Attachment.objects.filter(pk__in=[stale["id"], sent["id"]]).update(created_at=a_day_ago)
    stale_row = Attachment.objects.get(pk=stale["id"])
    orphan = store / "zz" / "orphan-left-by-a-crash"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"ciphertext")
    os.utime(orphan, (a_day_ago.timestamp(), a_day_ago.timestamp()))
    young_orphan = store / "zz" / "upload-in-flight.part"
    young_orphan.write_bytes(b"ciphertext")

    out = io.StringIO()
    call_command("purge_uploads", "--json", stdout=out)

    report = json.loads(out.getvalue())
    assert report["purged"] == [stale["id"]]
    assert report["orphans_removed"] == 1
    assert report["bytes_freed"] == stale["size"]
    stale_row.refresh_from_db()
    assert stale_row.purged_at is not None
    assert not (store / stale_row.storage_name).exists()
    assert not (store / stale_row.thumbnail_storage_name).exists()
    assert not orphan.exists()
    assert young_orphan.exists()
    remaining = {path.name for path in stored_files(store)}
    for payload in (sent, fresh):
        assert Attachment.objects.get(pk=payload["id"]).storage_name.split("/")[1] in remaining
    event = AuditEvent.objects.get(action="attachment.purged")
    assert (event.actor, event.actor_label, event.target_id) == (
        None,
        "system:purge_uploads",
        str(stale["id"]),
    )
    assert download(olivia, stale["id"]).status_code == 404
    with pytest.raises(Invalid, match="was never sent and has been removed"):
        send(uk_officer, room, [stale["id"]], seq=2)


def test_a_purged_upload_cannot_be_claimed(olivia: Client, uk_officer: User, room: Room) -> None:
    attachment_id = upload(olivia, room, "old.txt", b"old\n").json()["attachment"]["id"]
    Attachment.objects.filter(pk=attachment_id).update(purged_at=timezone.now())

    with pytest.raises(Invalid, match="was never sent and has been removed"):
        send(uk_officer, room, [attachment_id])


def test_purge_uploads_reports_in_words_and_checks_its_argument(olivia: Client, room: Room) -> None:
    upload(olivia, room, "young.txt", b"young\n")
    out = io.StringIO()

    call_command("purge_uploads", "--older-than", "1", stdout=out)

    assert out.getvalue().startswith("Purged 0 unsent upload(s) older than 1 h")
    assert Attachment.objects.filter(purged_at__isnull=True).count() == 1
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="positive"):
        call_command("purge_uploads", "--older-than", "0")
