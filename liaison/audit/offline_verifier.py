"""Check a signed Liaison audit export offline, with nothing but Python and ``cryptography``.

    python offline_verifier.py EXPORT_DIR --public-key KEY
    python -m liaison.audit.offline_verifier EXPORT_DIR --public-key KEY    # from a checkout
    python offline_verifier.py HANDOVER.zip --public-key KEY               # a hand-over package

``KEY`` is the export signer's Ed25519 public key (base64 of its 32 raw bytes, or PEM), or the
path of a file holding it; obtain it from the operator out of band (``manage.py audit
public-key``), never from the export itself. Exit status 0 when everything checks out, 1 when
anything does not, 2 when the command line or the key is unusable.

What is checked:
- ``manifest.sig`` is a valid Ed25519 signature of the exact bytes of ``manifest.json``;
- every file the manifest lists has the listed size and SHA-256;
- each event in ``events.jsonl`` still hashes to its ``hash``
  (``SHA-256(prev_hash || canonical JSON of the event without hash)``), in increasing ``seq``;
- each room's messages in ``transcript.jsonl`` form an unbroken hash chain from the first
  message to the head the manifest names (the decrypted text cannot be checked against the
  ciphertext without the keys; the signature vouches for it).

A data exchange hand-over package (``liaison-handover``: a comparison's result as CSV and XLSX
with a signed manifest naming the exercise, the comparison, its inputs and the departments it
went to) is checked the same way, signature and files, as a directory or as the ZIP itself.

This file deliberately imports no Django and nothing else from Liaison, so an outside party can
run it alone (``liaison.audit`` loads its other modules only on first use, so ``-m`` does not
pull Django in either). ``manage.py audit verify-export`` and ``verify --public-key`` reuse it.
"""

from __future__ import annotations

if __name__ == "__main__":  # run as a script: keep Liaison's own modules off the import path
    import os as _os
    import sys as _sys

    _here = _os.path.dirname(_os.path.abspath(__file__))
    _sys.path[:] = [p for p in _sys.path if _os.path.abspath(p or ".") != _here]

import argparse
import base64
import binascii
import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

FORMAT = "liaison-audit-export"
HANDOVER_FORMAT = "liaison-handover"
MAX_PACKAGE_MEMBER_BYTES = 1024 * 1024 * 1024
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
EVENTS = "events.jsonl"
TRANSCRIPT = "transcript.jsonl"
GENESIS_HASH = "0" * 64
CHUNK = 1 << 16


class KeyProblem(ValueError):
    """The public key given on the command line cannot be used."""


@dataclass
class ExportCheck:
    directory: str
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    events: int = 0
    messages: int = 0
    rooms: int = 0
    exercise: str = ""
    format: str = FORMAT
    files: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def canonical(fields: dict[str, Any]) -> bytes:
    """The same canonical JSON the server hashes: sorted keys, compact, UTF-8."""
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def event_hash(event: dict[str, Any]) -> str:
    fields = {k: v for k, v in event.items() if k != "hash"}
    return hashlib.sha256(str(event.get("prev_hash", "")).encode() + canonical(fields)).hexdigest()


def message_link(message: dict[str, Any]) -> str:
    fields = {
        "room": message["room"],
        "seq": message["seq"],
        "sender": message["sender"]["id"],
        "created_at": message["created_at"],
        "kind": message["kind"],
        "key_version": message["key_version"],
        "body_digest": message["body_digest"],
    }
    version = message.get("link_version", 1)
    if version >= 2:  # as liaison.audit.chain.message_link_hash
        fields |= {
            "v": version,
            "marking": message["marking"],
            "reply_to": message["reply_to_seq"],
            "mentions": message["mentions"] or {},
        }
    return hashlib.sha256(str(message["prev_hash"]).encode() + canonical(fields)).hexdigest()


def load_public_key(value: str) -> Ed25519PublicKey:
    """A public key from base64, PEM, or a file holding either."""
    text = value.strip()
    candidate = Path(text)
    if len(text) < 4096 and "\n" not in text:
        try:
            if candidate.is_file():
                text = candidate.read_text().strip()
        except OSError:
            pass
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(text.encode())
        except ValueError as exc:
            raise KeyProblem(f"not a readable PEM public key ({exc})") from None
        if not isinstance(key, Ed25519PublicKey):
            raise KeyProblem("the PEM key is not an Ed25519 key")
        return key
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error:
        raise KeyProblem("neither a file, nor base64, nor PEM") from None
    if len(raw) != 32:
        raise KeyProblem(f"an Ed25519 public key is 32 bytes, this decodes to {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def _digest(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _safe_name(name: object) -> bool:
    return (
        isinstance(name, str)
        and name not in {"", ".", ".."}
        and "/" not in name
        and "\\" not in name
        and "\x00" not in name
    )


def _json_lines(path: Path, check: ExportCheck) -> Any:
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                yield number, json.loads(line)
            except (ValueError, UnicodeDecodeError):
                check.problems.append(f"{path.name} line {number} is not valid JSON.")
                return


def _check_events(path: Path, manifest: dict[str, Any], check: ExportCheck) -> None:
    exercise_id = manifest.get("exercise", {}).get("id")
    last_seq = 0
    for number, event in _json_lines(path, check):
        if not isinstance(event, dict) or not isinstance(event.get("seq"), int):
            check.problems.append(f"{EVENTS} line {number} is not an audit event.")
            return
        if event["seq"] <= last_seq:
            check.problems.append(
                f"{EVENTS} line {number}: seq {event['seq']} does not follow seq {last_seq}."
            )
            return
        if event_hash(event) != event.get("hash"):
            check.problems.append(
                f"{EVENTS} line {number}: event seq {event['seq']} does not match its hash."
            )
            return
        if event.get("exercise_id") != exercise_id:
            check.problems.append(
                f"{EVENTS} line {number}: event seq {event['seq']} belongs to another exercise."
            )
            return
        last_seq = event["seq"]
        check.events += 1
    expected = manifest.get("counts", {}).get("events")
    if check.ok and expected != check.events:
        check.problems.append(
            f"{EVENTS} holds {check.events} events, the manifest says {expected}."
        )


def _check_transcript(path: Path, manifest: dict[str, Any], check: ExportCheck) -> None:
    heads = manifest.get("chain", {}).get("rooms", {})
    room: dict[str, Any] | None = None
    last_seq, last_hash = 0, GENESIS_HASH

    def close_room() -> bool:
        if room is None:
            return True
        head = heads.get(str(room["id"]), {})
        if head.get("seq") != last_seq or head.get("hash") != last_hash:
            check.problems.append(
                f"{TRANSCRIPT}: room {room['id']} ends at message {last_seq}, but the manifest "
                f"names head {head.get('seq')}."
            )
            return False
        return True

    for number, line in _json_lines(path, check):
        kind = line.get("type") if isinstance(line, dict) else None
        if kind == "room":
            if not close_room():
                return
            room, last_seq, last_hash = line, 0, GENESIS_HASH
            check.rooms += 1
            continue
        if kind != "message" or room is None:
            check.problems.append(f"{TRANSCRIPT} line {number} is neither a room nor a message.")
            return
        try:
            if line["room"] != room["id"] or line["seq"] != last_seq + 1:
                check.problems.append(
                    f"{TRANSCRIPT} line {number}: message {line['seq']} of room {line['room']} "
                    f"does not follow message {last_seq} of room {room['id']}."
                )
                return
            if line["prev_hash"] != last_hash or message_link(line) != line["chain_hash"]:
                check.problems.append(
                    f"{TRANSCRIPT} line {number}: message {line['seq']} of room {room['id']} "
                    "breaks the room's hash chain."
                )
                return
        except (KeyError, TypeError):
            check.problems.append(f"{TRANSCRIPT} line {number} is not a transcript message.")
            return
        last_seq, last_hash = line["seq"], line["chain_hash"]
        check.messages += 1
    if not close_room():
        return
    if check.rooms != len(heads):
        check.problems.append(
            f"{TRANSCRIPT} holds {check.rooms} rooms, the manifest names {len(heads)}."
        )


def verify_export(directory: str | Path, public_key: Ed25519PublicKey) -> ExportCheck:
    """Check an export directory against the signer's public key."""
    root = Path(directory)
    check = ExportCheck(directory=str(root))
    manifest_path, signature_path = root / MANIFEST, root / SIGNATURE
    if not manifest_path.is_file() or not signature_path.is_file():
        check.problems.append(f"{root} holds no {MANIFEST} and {SIGNATURE}: not an export.")
        return check
    manifest_bytes = manifest_path.read_bytes()
    try:
        signature = base64.b64decode(signature_path.read_text().strip(), validate=True)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        check.problems.append(f"{SIGNATURE} is not base64.")
        return check
    try:
        public_key.verify(signature, manifest_bytes)
    except InvalidSignature:
        check.problems.append(
            f"The signature in {SIGNATURE} does not verify: {MANIFEST} was altered, or the "
            "export was signed by another key."
        )
        return check
    try:
        manifest = json.loads(manifest_bytes)
    except ValueError:
        check.problems.append(f"{MANIFEST} is signed but is not JSON.")
        return check
    if not isinstance(manifest, dict) or manifest.get("format") not in {FORMAT, HANDOVER_FORMAT}:
        check.problems.append(f"{MANIFEST} is not a {FORMAT} or {HANDOVER_FORMAT} manifest.")
        return check
    check.format = manifest["format"]
    check.exercise = str(manifest.get("exercise", {}).get("code", ""))
    listed: set[str] = set()
    for entry in manifest.get("files", []):
        name = entry.get("name") if isinstance(entry, dict) else None
        if not _safe_name(name):
            check.problems.append(f"{MANIFEST} lists an unsafe file name {name!r}.")
            return check
        listed.add(name)
        path = root / name
        if not path.is_file():
            check.problems.append(f"{name} is listed in the manifest but missing.")
            continue
        digest, size = _digest(path)
        if size != entry.get("size"):
            check.problems.append(f"{name} is {size} bytes, the manifest says {entry.get('size')}.")
        elif digest != entry.get("sha256"):
            check.problems.append(f"{name} does not match its SHA-256 in the manifest: altered.")
        else:
            check.files += 1
    if not check.ok:
        return check
    if check.format == HANDOVER_FORMAT:
        _check_signer(manifest, public_key, check)
        return check
    for required in (EVENTS, TRANSCRIPT):
        if required not in listed:
            check.problems.append(f"The manifest does not list {required}.")
    if not check.ok:
        return check
    extra = sorted(p.name for p in root.iterdir() if p.name not in listed | {MANIFEST, SIGNATURE})
    if extra:
        check.notes.append(f"Not part of the signed export (ignored): {', '.join(extra)}.")
    _check_events(root / EVENTS, manifest, check)
    if check.ok:
        _check_transcript(root / TRANSCRIPT, manifest, check)
    _check_signer(manifest, public_key, check)
    return check


def _check_signer(
    manifest: dict[str, Any], public_key: Ed25519PublicKey, check: ExportCheck
) -> None:
    signer = manifest.get("signature", {}).get("public_key")
    given = base64.b64encode(
        public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    ).decode()
    if check.ok and signer and signer != given:
        check.notes.append("The manifest names another public key than the one given.")


def verify_package(path: str | Path, public_key: Ed25519PublicKey) -> ExportCheck:
    """Check an export or hand-over package given as a directory or as its ZIP file (whose
    members are unpacked, by safe name only, into a temporary directory first)."""
    import tempfile
    import zipfile

    source = Path(path)
    if not source.is_file():
        return verify_export(source, public_key)
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError):
        check = ExportCheck(directory=str(source))
        check.problems.append(f"{source} is neither a directory nor a ZIP package.")
        return check
    with archive, tempfile.TemporaryDirectory(prefix="liaison-verify-") as work:
        for member in archive.infolist():
            if member.is_dir():
                continue
            if not _safe_name(member.filename) or member.file_size > MAX_PACKAGE_MEMBER_BYTES:
                check = ExportCheck(directory=str(source))
                check.problems.append(f"The package holds an unsafe member {member.filename!r}.")
                return check
            with archive.open(member) as handle, open(Path(work) / member.filename, "wb") as out:
                while chunk := handle.read(CHUNK):
                    out.write(chunk)
        check = verify_export(work, public_key)
        check.directory = str(source)
        return check


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Verify a signed Liaison audit export offline (needs only 'cryptography')."
    )
    parser.add_argument(
        "directory", help="the export directory (holding manifest.json), or a package's ZIP"
    )
    parser.add_argument(
        "--public-key",
        required=True,
        help="the signer's Ed25519 public key: base64, PEM, or a file holding either",
    )
    args = parser.parse_args(argv)
    try:
        key = load_public_key(args.public_key)
    except KeyProblem as exc:
        print(f"Unusable public key: {exc}.", file=sys.stderr)
        return 2
    check = verify_package(args.directory, key)
    for note in check.notes:
        print(f"note: {note}")
    if check.ok and check.format == HANDOVER_FORMAT:
        print(
            f"OK: hand-over package of {check.exercise} verified: signature valid, "
            f"{check.files} files intact."
        )
        return 0
    if check.ok:
        print(
            f"OK: export of {check.exercise} verified: signature valid, {check.events} events "
            f"and {check.messages} messages in {check.rooms} rooms intact."
        )
        return 0
    for problem in check.problems:
        print(f"FAILED: {problem}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
