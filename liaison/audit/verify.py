"""Verification of the audit chain, the rooms' message chains, and the signed checkpoints.

Walks each chain in ``seq`` order in keyset-paged chunks (constant memory, no long-held cursor)
and reports the first break of each chain with what is wrong:

- ``missing``: a gap in the audit ``seq`` (a row deleted);
- ``altered``: a row's content no longer hashes to its stored hash;
- ``reordered``: a row's ``prev_hash`` names an event stored later in the chain;
- ``link_broken``: a row's ``prev_hash`` names no event (the row before it was altered and
  re-hashed, or rows were removed and the later ones renumbered);
- ``removed``: a gap in a room's message ``seq`` (a message row deleted);
- ``head_mismatch``: a room's recorded head (``last_seq``/``chain_head``) disagrees with its rows;
- ``head_behind_checkpoint``: a chain ends before a signed checkpoint's head (truncation);
- ``checkpoint_mismatch``: a chain holds another hash at a checkpoint's ``seq`` (rewritten);
- ``checkpoint_signature_invalid`` / ``checkpoint_unreadable``: a checkpoint file was altered
  or forged.
"""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.utils.translation import gettext

from liaison.audit import signing
from liaison.audit.chain import (
    GENESIS_HASH,
    canonical,
    canonical_time,
    iter_raw_rows,
    json_value,
    message_link_hash,
)
from liaison.audit.checkpoints import CheckpointUnreadable, checkpoint_names, read_checkpoint
from liaison.models import AuditEvent, Exercise, Message, Room

CHUNK = 5000  # audit seqs per read window
MESSAGE_CHUNK = 2000

MESSAGE_FIELDS = (
    "seq",
    "sender_id",
    "created_at",
    "kind",
    "key_version",
    "nonce",
    "ciphertext",
    "prev_hash",
    "chain_hash",
    "link_version",
    "marking",
    "reply_to_seq",
    "mentions",
)


@dataclass(frozen=True)
class Break:
    """The first place a chain stops being trustworthy."""

    chain: str  # "audit", "room" or "checkpoint"
    seq: int
    reason: str
    detail: str
    room_id: int | None = None
    room: str = ""  # "<exercise code>/<room name>"


@dataclass
class VerifyReport:
    exercise: str | None = None
    events_checked: int = 0
    exercise_events: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS_HASH
    rooms_checked: int = 0
    messages_checked: int = 0
    checkpoints_checked: int = 0
    latest_checkpoint: str | None = None
    latest_checkpoint_seq: int | None = None
    breaks: list[Break] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    elapsed_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.breaks

    @property
    def first_break(self) -> Break | None:
        """The audit chain's break if any, else the first room's, else a checkpoint's."""
        order = {"audit": 0, "room": 1, "checkpoint": 2}
        if not self.breaks:
            return None
        return sorted(self.breaks, key=lambda b: (order.get(b.chain, 3), b.room_id or 0, b.seq))[0]

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        data["elapsed_seconds"] = round(self.elapsed_seconds, 3)
        return data

    def summary(self) -> str:
        if self.ok:
            scope = (
                gettext(" (rooms of %(exercise)s)") % {"exercise": self.exercise}
                if self.exercise
                else ""
            )
            checkpoint = (
                gettext("; consistent with %(count)s signed checkpoint(s), latest at seq %(seq)s")
                % {"count": self.checkpoints_checked, "seq": self.latest_checkpoint_seq}
                if self.checkpoints_checked
                else ""
            )
            return gettext(
                "Audit chain intact: %(events)s events up to seq %(head)s; %(messages)s messages "
                "in %(rooms)s room(s)%(scope)s intact%(checkpoint)s."
            ) % {
                "events": self.events_checked,
                "head": self.head_seq,
                "messages": self.messages_checked,
                "rooms": self.rooms_checked,
                "scope": scope,
                "checkpoint": checkpoint,
            }
        first = self.first_break
        assert first is not None
        where = gettext("room %(room)s ") % {"room": first.room} if first.chain == "room" else ""
        return gettext("BROKEN: %(where)sseq %(seq)s: %(reason)s: %(detail)s") % {
            "where": where,
            "seq": first.seq,
            "reason": first.reason,
            "detail": first.detail,
        }


@dataclass
class _Expectations:
    """What the signed checkpoints say each chain held at given seqs."""

    audit: dict[int, list[tuple[str, str]]] = field(default_factory=lambda: defaultdict(list))
    rooms: dict[int, dict[int, list[tuple[str, str]]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list))
    )

    def audit_max(self) -> tuple[int, str] | None:
        if not self.audit:
            return None
        seq = max(self.audit)
        return seq, self.audit[seq][0][1]

    def room_max(self, room_id: int) -> tuple[int, str] | None:
        seqs = self.rooms.get(room_id)
        if not seqs:
            return None
        seq = max(seqs)
        return seq, seqs[seq][0][1]


def _load_checkpoints(report: VerifyReport, public_key: Ed25519PublicKey | None) -> _Expectations:
    expect = _Expectations()
    names = checkpoint_names()
    if not names:
        report.warnings.append(
            "No signed checkpoint yet: a cut tail or a recomputed chain cannot be detected "
            "(run manage.py audit checkpoint on a schedule)."
        )
        return expect
    key = public_key or signing.signing_key().public_key()
    for name in names:
        try:
            checkpoint = read_checkpoint(name)
        except CheckpointUnreadable as exc:
            report.breaks.append(
                Break(
                    chain="checkpoint",
                    seq=0,
                    reason="checkpoint_unreadable",
                    detail=f"{name} is {exc.problem}: the checkpoint store was tampered with.",
                )
            )
            continue
        if not checkpoint.signature_valid(key):
            report.breaks.append(
                Break(
                    chain="checkpoint",
                    seq=checkpoint.audit_seq,
                    reason="checkpoint_signature_invalid",
                    detail=(
                        f"{name}: the signature does not verify with the audit public key; "
                        "the checkpoint was altered or forged."
                    ),
                )
            )
            continue
        report.checkpoints_checked += 1
        report.latest_checkpoint = name
        report.latest_checkpoint_seq = checkpoint.audit_seq
        if checkpoint.audit_seq > 0:
            expect.audit[checkpoint.audit_seq].append((name, checkpoint.audit_hash))
        for room_id, (seq, head) in checkpoint.rooms.items():
            if seq > 0:
                expect.rooms[room_id][seq].append((name, head))
    return expect


def _gap_detail(expected: int, found: int, what: str) -> str:
    if found == expected + 1:
        return f"{what} {expected} is missing: the chain goes from {expected - 1} to {found}."
    return (
        f"{what}s {expected}–{found - 1} are missing: the chain goes from {expected - 1} "
        f"to {found}."
    )


def _audit_link_break(seq: int, prev_hash: str) -> Break:
    later = (
        AuditEvent.objects.filter(hash=prev_hash, seq__gt=seq)
        .order_by("seq")
        .values_list("seq", flat=True)
        .first()
    )
    if later is not None:
        return Break(
            chain="audit",
            seq=seq,
            reason="reordered",
            detail=(
                f"seq {seq} links to the event stored at seq {later}, which comes after it: "
                "events were reordered."
            ),
        )
    return Break(
        chain="audit",
        seq=seq,
        reason="link_broken",
        detail=(
            f"seq {seq}'s prev_hash is not the hash of seq {seq - 1} and names no event: seq "
            f"{seq - 1} was altered and re-hashed, or events were removed and renumbered."
        ),
    )


def _verify_audit_chain(
    report: VerifyReport, expect: _Expectations, exercise_id: int | None
) -> None:
    last_seq, last_hash = 0, GENESIS_HASH
    sha256 = hashlib.sha256
    for row in iter_raw_rows(window=CHUNK):
        seq = row[0]
        prev_hash, stored = row[10], row[11]
        if seq != last_seq + 1:
            report.breaks.append(
                Break(
                    chain="audit",
                    seq=last_seq + 1,
                    reason="missing",
                    detail=_gap_detail(last_seq + 1, seq, "seq"),
                )
            )
            return
        if prev_hash != last_hash:
            report.breaks.append(_audit_link_break(seq, prev_hash))
            return
        fields = {
            "seq": seq,
            "created_at": canonical_time(row[1]),
            "actor_id": row[2],
            "actor_label": row[3],
            "action": row[4],
            "target_type": row[5],
            "target_id": row[6],
            "exercise_id": row[7],
            "ip": row[8],
            "details": json_value(row[9]),
            "prev_hash": prev_hash,
        }
        if sha256(prev_hash.encode() + canonical(fields)).hexdigest() != stored:
            report.breaks.append(
                Break(
                    chain="audit",
                    seq=seq,
                    reason="altered",
                    detail=f"seq {seq} ({row[4]}) no longer matches its hash: it was altered.",
                )
            )
            return
        for name, signed_hash in expect.audit.get(seq, ()):
            if signed_hash != stored:
                report.breaks.append(
                    Break(
                        chain="audit",
                        seq=seq,
                        reason="checkpoint_mismatch",
                        detail=(
                            f"seq {seq} has another hash than signed checkpoint {name}: the "
                            f"chain was rewritten at or before seq {seq}"
                            + _matched_before(expect, seq)
                        ),
                    )
                )
                return
        if exercise_id is not None and row[7] == exercise_id:
            report.exercise_events += 1
        report.events_checked += 1
        last_seq, last_hash = seq, stored
    report.head_seq, report.head_hash = last_seq, last_hash
    signed = expect.audit_max()
    if signed is not None and signed[0] > last_seq:
        report.breaks.append(
            Break(
                chain="audit",
                seq=last_seq + 1,
                reason="head_behind_checkpoint",
                detail=(
                    f"the chain ends at seq {last_seq} but a signed checkpoint reaches seq "
                    f"{signed[0]}: events {last_seq + 1}–{signed[0]} were cut off."
                ),
            )
        )


def _matched_before(expect: _Expectations, seq: int) -> str:
    earlier = [s for s in expect.audit if s < seq]
    if not earlier:
        return "."
    return f" (it still matches the checkpoint at seq {max(earlier)}, so after that seq)."


def _room_label(code: str, name: str) -> str:
    return f"{code}/{name}"


def _verify_room(
    report: VerifyReport,
    expect: _Expectations,
    *,
    room_id: int,
    label: str,
    last_seq_recorded: int,
    head_recorded: str,
) -> None:
    def broken(seq: int, reason: str, detail: str) -> None:
        report.breaks.append(
            Break(chain="room", seq=seq, reason=reason, detail=detail, room_id=room_id, room=label)
        )

    signed = expect.rooms.get(room_id, {})
    last_seq, last_hash = 0, GENESIS_HASH
    while True:
        rows = list(
            Message.objects.filter(room_id=room_id, seq__gt=last_seq)
            .order_by("seq")
            .values_list(*MESSAGE_FIELDS)[:MESSAGE_CHUNK]
        )
        if not rows:
            break
        for row in rows:
            seq, sender_id, created_at, kind, key_version, nonce, ciphertext, prev, stored = row[:9]
            link_version, marking, reply_to_seq, mentions = row[9:]
            if seq != last_seq + 1:
                broken(
                    last_seq + 1,
                    "removed",
                    _gap_detail(last_seq + 1, seq, "message seq").replace(
                        "is missing", "was removed"
                    ),
                )
                return
            if prev != last_hash:
                later = (
                    Message.objects.filter(room_id=room_id, chain_hash=prev, seq__gt=seq)
                    .values_list("seq", flat=True)
                    .first()
                )
                if later is not None:
                    broken(
                        seq,
                        "reordered",
                        f"message {seq} links to message {later}, which comes after it.",
                    )
                else:
                    broken(
                        seq,
                        "link_broken",
                        f"message {seq}'s prev_hash is not the chain hash of message {seq - 1}.",
                    )
                return
            computed = message_link_hash(
                prev_hash=prev,
                room_id=room_id,
                seq=seq,
                sender_id=sender_id,
                created_at=created_at,
                kind=kind,
                key_version=key_version,
                nonce=nonce,
                ciphertext=ciphertext,
                link_version=link_version,
                marking=marking,
                reply_to_seq=reply_to_seq,
                mentions=mentions,
            )
            if computed != stored:
                broken(seq, "altered", f"message {seq} no longer matches its chain hash.")
                return
            for name, signed_hash in signed.get(seq, ()):
                if signed_hash != stored:
                    broken(
                        seq,
                        "checkpoint_mismatch",
                        f"message {seq} has another chain hash than signed checkpoint {name}: "
                        "the room's chain was rewritten.",
                    )
                    return
            report.messages_checked += 1
            last_seq, last_hash = seq, stored
    if last_seq != last_seq_recorded or last_hash != head_recorded:
        if last_seq < last_seq_recorded:
            broken(
                last_seq + 1,
                "removed",
                f"the room's last message is {last_seq} but it recorded {last_seq_recorded}: "
                f"messages {last_seq + 1}–{last_seq_recorded} were removed.",
            )
        else:
            broken(
                last_seq,
                "head_mismatch",
                f"the room's recorded head (seq {last_seq_recorded}) does not match its last "
                f"message (seq {last_seq}).",
            )
        return
    top = expect.room_max(room_id)
    if top is not None and top[0] > last_seq:
        broken(
            last_seq + 1,
            "head_behind_checkpoint",
            f"the room's chain ends at message {last_seq} but a signed checkpoint reaches "
            f"message {top[0]}: messages were cut off.",
        )


def verify(
    *,
    exercise: Exercise | None = None,
    public_key: Ed25519PublicKey | None = None,
    checkpoints: bool = True,
) -> VerifyReport:
    """Verify everything (or, with ``exercise``, the audit chain and that exercise's rooms).

    The audit chain is one chain across exercises, so it is always walked whole.
    """
    started = time.perf_counter()
    report = VerifyReport(exercise=exercise.code if exercise is not None else None)
    expect = _load_checkpoints(report, public_key) if checkpoints else _Expectations()
    _verify_audit_chain(report, expect, exercise.pk if exercise is not None else None)
    rooms = Room.objects.order_by("pk")
    if exercise is not None:
        rooms = rooms.filter(exercise=exercise)
    seen: set[int] = set()
    for room_id, code, name, last_seq, head in rooms.values_list(
        "pk", "exercise__code", "name", "last_seq", "chain_head"
    ):
        seen.add(room_id)
        report.rooms_checked += 1
        _verify_room(
            report,
            expect,
            room_id=room_id,
            label=_room_label(code, name),
            last_seq_recorded=last_seq,
            head_recorded=head,
        )
    if exercise is None:
        for room_id in sorted(set(expect.rooms) - seen):
            report.breaks.append(
                Break(
                    chain="room",
                    seq=1,
                    reason="removed",
                    detail=f"room {room_id} is in a signed checkpoint but no longer exists.",
                    room_id=room_id,
                    room=f"#{room_id}",
                )
            )
    report.elapsed_seconds = time.perf_counter() - started
    return report
