"""Signed exports of an exercise, for outside parties.

An export is four files: ``events.jsonl`` (the exercise's audit events, each with the fields its
hash covers), ``transcript.jsonl`` (every room's messages, decrypted, with revisions, deletions
and shredded content marked, and each message's chain link), ``manifest.json`` (file sizes and
SHA-256, exercise, time range, chain heads, public key) and ``manifest.sig`` (base64 Ed25519
signature of the manifest's bytes). ``liaison/audit/offline_verifier.py`` checks one with the
public key alone.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from django.utils import timezone

from liaison.audit import signing
from liaison.audit.chain import GENESIS_HASH, canonical
from liaison.audit.transcripts import People, iso, iter_transcript
from liaison.models import AuditEvent, Exercise, Room

FORMAT = "liaison-audit-export"
FORMAT_VERSION = 1
EVENTS = "events.jsonl"
TRANSCRIPT = "transcript.jsonl"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"


def event_line(row: AuditEvent) -> dict[str, Any]:
    """An audit event with exactly the fields its hash covers, plus the hash."""
    return {
        "seq": row.seq,
        "created_at": iso(row.created_at),
        "actor_id": row.actor_id,
        "actor_label": row.actor_label,
        "action": row.action,
        "target_type": row.target_type,
        "target_id": row.target_id,
        "exercise_id": row.exercise_id,
        "ip": row.ip,
        "details": row.details,
        "prev_hash": row.prev_hash,
        "hash": row.hash,
    }


# --- where the files go ------------------------------------------------------------------------


class Sink(Protocol):
    def open(self, name: str) -> Any: ...


class DirectorySink:
    """Files in a directory the operator chose (created if missing; existing exports refused)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def prepare(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        clash = [n for n in (EVENTS, TRANSCRIPT, MANIFEST, SIGNATURE) if (self.path / n).exists()]
        if clash:
            raise FileExistsError(f"{self.path} already holds {', '.join(clash)}.")

    @contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]:
        with (self.path / name).open("xb") as handle:
            yield handle


class ZipSink:
    """Files inside a zip archive under one folder, each written as a stream (ZIP64, so a
    transcript may pass 4 GiB). The export jobs write the archive straight into an encrypted
    file (``services.exports``), so no decrypted text reaches the server's disk."""

    def __init__(self, archive: zipfile.ZipFile, folder: str) -> None:
        self.archive = archive
        self.folder = folder.strip("/")

    @contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]:
        with self.archive.open(f"{self.folder}/{name}", "w", force_zip64=True) as handle:
            yield handle


class _Counting:
    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        self.digest = hashlib.sha256()
        self.size = 0
        self.lines = 0

    def line(self, data: dict[str, Any]) -> None:
        chunk = canonical(data) + b"\n"
        self.handle.write(chunk)
        self.digest.update(chunk)
        self.size += len(chunk)
        self.lines += 1

    def entry(self, name: str) -> dict[str, Any]:
        return {"name": name, "sha256": self.digest.hexdigest(), "size": self.size}


@dataclass(frozen=True)
class ExportResult:
    manifest: dict[str, Any]
    manifest_sha256: str
    events: int
    rooms: int
    messages: int


def write_export(*, exercise: Exercise, sink: Sink) -> ExportResult:
    """Write a signed export of ``exercise`` into ``sink``.

    Every chain head is read first and the files stop there, so writes that land during the
    export never make the files disagree with the manifest.
    """
    last = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first()
    audit_head = {"seq": last[0], "hash": last[1]} if last else {"seq": 0, "hash": GENESIS_HASH}
    rooms = list(Room.objects.filter(exercise=exercise).order_by("pk"))
    started, ended = None, None

    def widen(moment: str | None) -> None:
        nonlocal started, ended
        if moment is None:
            return
        started = moment if started is None or moment < started else started
        ended = moment if ended is None or moment > ended else ended

    files = []
    with sink.open(EVENTS) as handle:
        out = _Counting(handle)
        cursor = 0
        while True:
            chunk = list(
                AuditEvent.objects.filter(
                    exercise=exercise, seq__gt=cursor, seq__lte=audit_head["seq"]
                ).order_by("seq")[:2000]
            )
            if not chunk:
                break
            for row in chunk:
                line = event_line(row)
                out.line(line)
                widen(line["created_at"])
                cursor = row.seq
        files.append(out.entry(EVENTS))
        events = out.lines

    people = People()
    messages = 0
    room_heads: dict[str, dict[str, Any]] = {}
    with sink.open(TRANSCRIPT) as handle:
        out = _Counting(handle)
        for room in rooms:
            room_heads[str(room.pk)] = {
                "name": room.name,
                "seq": room.last_seq,
                "hash": room.chain_head,
            }
            out.line(
                {
                    "type": "room",
                    "id": room.pk,
                    "name": room.name,
                    "title": room.title,
                    "created_at": iso(room.created_at),
                    "last_seq": room.last_seq,
                    "chain_head": room.chain_head,
                }
            )
            for entry in iter_transcript(room, upto_seq=room.last_seq, people=people):
                out.line(entry)
                widen(entry["created_at"])
                messages += 1
        files.append(out.entry(TRANSCRIPT))

    manifest = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "created_at": iso(timezone.now()),
        "exercise": {
            "id": exercise.pk,
            "code": exercise.code,
            "title": exercise.title,
            "status": exercise.status,
            "starts_at": iso(exercise.starts_at),
            "ends_at": iso(exercise.ends_at),
        },
        "time_range": {"from": started, "to": ended},
        "files": files,
        "counts": {"events": events, "rooms": len(rooms), "messages": messages},
        "chain": {"audit_head": audit_head, "rooms": room_heads},
        "signature": {
            "algorithm": "Ed25519",
            "file": SIGNATURE,
            "encoding": "base64",
            "public_key": signing.public_key_b64(),
        },
    }
    manifest_bytes = (
        json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    ).encode()
    with sink.open(MANIFEST) as handle:
        handle.write(manifest_bytes)
    with sink.open(SIGNATURE) as handle:
        handle.write(base64.b64encode(signing.sign(manifest_bytes)) + b"\n")
    return ExportResult(
        manifest=manifest,
        manifest_sha256=hashlib.sha256(manifest_bytes).hexdigest(),
        events=events,
        rooms=len(rooms),
        messages=messages,
    )


def export_folder_name(exercise: Exercise) -> str:
    stamp = timezone.now().astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    code = re.sub(r"[^A-Za-z0-9._-]+", "_", exercise.code)
    return f"liaison-export-{code}-{stamp}"
