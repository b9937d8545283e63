"""Exercise data exchange: data sets uploaded into an exercise, and the comparisons run on them.

An officer uploads a list of HS-code prefixes or a file of declarations (CSV or XLSX). The file
is sealed into the attachment store as it arrives (``DatasetUpload``, the same streaming AEAD
and store as attachments), then read by ``liaison.exchange.parsing``: a file with any bad row is
kept as *rejected*, its report readable, and no comparison uses it. Checked rows are sealed
beside the file, so a comparison reads them back quickly. Everything is sealed under the data
key of the exercise's first room: shredding the exercise destroys it with the conversation.

A comparison (HS-prefix overlap of two lists, or exports mirrored against imports) stores its
result sealed too, records an audit event, and posts a system message with the summary into
that room, in English and Chinese, so both sides see it live. A comparison over many rows runs
on a worker thread (until a job runner exists) and shows its progress on its page.
"""

from __future__ import annotations

import base64
import datetime as dt
import gc
import hashlib
import io
import json
import logging
import threading
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from liaison import access, audit, storage
from liaison.audit import signing
from liaison.crypto import ContentShredded, CryptoError, records, roomkeys
from liaison.crypto.records import (
    EXCHANGE_FILE,
    EXCHANGE_RESULT,
    EXCHANGE_ROWS,
    seal_dataset_name,
    stream_context,
)
from liaison.crypto.streaming import StreamEncryptor, decrypt_stream
from liaison.errors import (
    Conflict,
    Invalid,
    LiaisonError,
    PermissionDenied,
    RoomClosed,
    TooLarge,
)
from liaison.exchange import comparison as compare
from liaison.exchange import export, parsing
from liaison.exchange.parsing import RowError
from liaison.models import (
    Comparison,
    ComparisonKind,
    ComparisonStatus,
    Dataset,
    DatasetKind,
    DatasetStatus,
    Exercise,
    ExerciseStatus,
    GroupRole,
    MessageKind,
    Room,
    User,
)
from liaison.services import messaging
from liaison.services.attachments import clean_filename

logger = logging.getLogger(__name__)

RESULT_FORMAT = 1
# The languages of the exercise's two sides: the room summary is written in both.
SUMMARY_LANGUAGES = ("en", "zh-hans")


class ExchangeContentGone(LiaisonError):
    """Content destroyed by retention policy."""

    code = "shredded"
    http_status = 410
    default_detail = gettext_lazy("Content destroyed by retention policy.")


class ExchangeContentDamaged(LiaisonError):
    """Stored data failed its integrity check and will not be used."""

    code = "damaged"
    http_status = 500
    default_detail = gettext_lazy("Stored data failed its integrity check and will not be used.")


# --- bulk work -----------------------------------------------------------------------------------

_pause_lock = threading.Lock()
_pauses = 0
_resume_collector = False


@contextmanager
def bulk_work() -> Iterator[None]:
    """Around building or reading a hundred thousand rows at once: the cyclic garbage collector
    would otherwise walk the growing heap again and again (several times the work itself).
    Reference counting still frees everything; the collector resumes when the last caller is
    done."""
    global _pauses, _resume_collector
    with _pause_lock:
        _pauses += 1
        if _pauses == 1:
            _resume_collector = gc.isenabled()
            gc.disable()
    try:
        yield
    finally:
        with _pause_lock:
            _pauses -= 1
            if _pauses == 0 and _resume_collector:
                gc.enable()


# --- settings ------------------------------------------------------------------------------------


def max_upload_bytes() -> int:
    return int(getattr(settings, "LIAISON_EXCHANGE_MAX_BYTES", 64 * 1024 * 1024))


def limits() -> parsing.Limits:
    return parsing.Limits(max_rows=int(getattr(settings, "LIAISON_EXCHANGE_MAX_ROWS", 200_000)))


def background_rows() -> int:
    """A mirror comparison over more rows than this (exports and imports together) runs on a
    worker thread; fewer are compared within the request."""
    return int(getattr(settings, "LIAISON_EXCHANGE_BACKGROUND_ROWS", 20_000))


# --- where the exchange's data is sealed -----------------------------------------------------------


def key_room(exercise: Exercise) -> Room:
    """The exercise's first room: its data key seals the exercise's data, and it hears of every
    comparison."""
    room = Room.objects.filter(exercise=exercise).order_by("created_at", "pk").first()
    if room is None:
        raise Conflict(_("This exercise has no room yet: an administrator creates one first."))
    return room


class _SealedBlob:
    """One blob written piece by piece, sealed as it goes; ``abort()`` leaves nothing."""

    def __init__(self, *, room_id: int, key_version: int, key: bytes, kind: str) -> None:
        self.name = storage.new_blob_name()
        context = stream_context(
            kind, room_id=room_id, key_version=key_version, storage_name=self.name
        )
        self._encryptor = StreamEncryptor(key, context=context)
        self._writer = storage.BlobWriter(self.name)
        self._digest = hashlib.sha256()
        self.size = 0
        self.sha256 = ""
        self.done = False

    def write(self, data: bytes) -> None:
        self.size += len(data)
        self._digest.update(data)
        self._writer.write(self._encryptor.update(data))

    def commit(self) -> None:
        self._writer.write(self._encryptor.finalize())
        self._writer.commit()
        self.sha256 = self._digest.hexdigest()
        self.done = True

    def abort(self) -> None:
        self._writer.abort()
        storage.delete_blob(self.name)


def _seal_bytes(room_id: int, key_version: int, kind: str, data: bytes) -> _SealedBlob:
    blob = _SealedBlob(
        room_id=room_id,
        key_version=key_version,
        key=roomkeys.data_key(room_id, key_version),
        kind=kind,
    )
    try:
        view = memoryview(data)
        for start in range(0, len(data), 1024 * 1024):
            blob.write(bytes(view[start : start + 1024 * 1024]))
        blob.commit()
    except BaseException:
        blob.abort()
        raise
    return blob


def _read_blob(room_id: int, key_version: int, name: str, kind: str) -> bytes:
    """A sealed blob's plaintext, authenticated to its end."""
    try:
        key = roomkeys.data_key(room_id, key_version)
        context = stream_context(kind, room_id=room_id, key_version=key_version, storage_name=name)
        with storage.open_blob(name) as handle:
            return b"".join(decrypt_stream(key, handle, context=context))
    except ContentShredded:
        raise ExchangeContentGone() from None
    except (CryptoError, OSError):
        logger.error("exchange blob %s (room %s) failed its integrity check", name, room_id)
        raise ExchangeContentDamaged() from None


# --- data sets -------------------------------------------------------------------------------------


@dataclass
class DatasetResult:
    """A recorded data set and its bad rows (as listed; ``dataset.error_count`` counts all)."""

    dataset: Dataset
    errors: list[RowError] = field(default_factory=list)


def clean_kind(kind: object) -> str:
    if kind not in DatasetKind.values:
        raise Invalid(
            _("kind must be one of %(kinds)s.")
            % {"kinds": ", ".join(repr(value) for value in DatasetKind.values)},
            field="kind",
        )
    return str(kind)


class DatasetUpload:
    """One upload in flight: ``write()`` each piece, ``complete()``, then ``record()``.

    Pieces are sealed into the store as they arrive and kept in memory (never on disk in
    plaintext) for reading once the file is whole. ``abort()`` deletes every blob written
    and is automatic on any failure; a refusal by rule leaves an audit event.
    """

    def __init__(
        self, *, uploader: User, exercise: Exercise, filename: str, ip: str | None
    ) -> None:
        self.uploader = uploader
        self.exercise = exercise
        self.filename = clean_filename(filename) or "data.csv"
        self.ip = ip
        self.max_bytes = max_upload_bytes()
        self.room = key_room(exercise)
        self.key_version, key = roomkeys.active_key(self.room.pk)
        self.file = _SealedBlob(
            room_id=self.room.pk, key_version=self.key_version, key=key, kind=EXCHANGE_FILE
        )
        self.rows_blob: _SealedBlob | None = None
        self._plain = bytearray()
        self.state = "open"  # open → complete → recorded, or aborted

    def write(self, data: bytes) -> None:
        if self.state != "open":
            raise Invalid(_("This upload is no longer open."))
        try:
            if self.file.size + len(data) > self.max_bytes:
                raise TooLarge(
                    _("The file is larger than the %(mib)s MiB limit for data sets.")
                    % {"mib": self.max_bytes // (1024 * 1024)},
                    field="file",
                )
            self._plain += data
            self.file.write(bytes(data))
        except BaseException as error:
            self._fail(error)
            raise

    def complete(self) -> None:
        if self.state != "open":
            raise Invalid(_("This upload is no longer open."))
        try:
            if not self._plain:
                raise Invalid(_("The file is empty."), field="file")
            self.file.commit()
        except BaseException as error:
            self._fail(error)
            raise
        self.state = "complete"

    def record(self, *, kind: str, columns: Mapping[str, str] | None = None) -> DatasetResult:
        """Read and check the file, seal its checked rows, create the data set and its audit
        event. Whole-file refusals (unreadable, too large, columns not recognised) raise."""
        if self.state != "complete":
            raise Invalid(_("This upload is not complete."))
        try:
            kind = clean_kind(kind)
            with bulk_work():
                parsed = parsing.parse_dataset(
                    bytes(self._plain), kind=kind, columns=columns, limits=limits()
                )
            self._plain = bytearray()
            self.rows_blob = _seal_bytes(
                self.room.pk, self.key_version, EXCHANGE_ROWS, parsing.encode_rows(parsed)
            )
            dataset = self._store(kind, parsed)
        except BaseException as error:
            self._fail(error)
            raise
        self.state = "recorded"
        return DatasetResult(dataset, list(parsed.errors))

    def _store(self, kind: str, parsed: parsing.ParsedDataset) -> Dataset:
        assert self.rows_blob is not None
        with transaction.atomic():
            exercise, membership = access.access_exchange(self.uploader, self.exercise.pk)
            access.require_can_exchange(exercise, membership)  # still a member, still active
            sealed_name = seal_dataset_name(
                room_id=self.room.pk,
                key_version=self.key_version,
                storage_name=self.file.name,
                name=self.filename,
            )
            dataset = Dataset.objects.create(
                exercise=exercise,
                kind=kind,
                status=DatasetStatus.ACCEPTED if parsed.ok else DatasetStatus.REJECTED,
                uploaded_by=self.uploader,
                key_room=self.room,
                key_version=self.key_version,
                storage_name=self.file.name,
                rows_storage_name=self.rows_blob.name,
                size=self.file.size,
                sha256=self.file.sha256,
                file_format=parsed.file_format,
                encoding=parsed.encoding,
                name_nonce=sealed_name.nonce,
                name_ciphertext=sealed_name.ciphertext,
                rows=len(parsed.rows),
                error_count=parsed.error_count,
                columns=parsed.columns,
            )
            audit.record(
                actor=self.uploader,
                action="dataset.uploaded",
                target=dataset,
                exercise=exercise,
                ip=self.ip,
                kind=kind,
                status=dataset.status,
                rows=dataset.rows,
                bad_cells=dataset.error_count,
                size=dataset.size,
                sha256=dataset.sha256,
                format=dataset.file_format,
                encoding=dataset.encoding,
            )
        return dataset

    def abort(self) -> None:
        """Delete whatever was written. Safe in any state; a no-op once recorded."""
        if self.state in {"recorded", "aborted"}:
            return
        self.state = "aborted"
        self._plain = bytearray()
        self.file.abort()
        if self.rows_blob is not None:
            self.rows_blob.abort()

    def _fail(self, error: BaseException) -> None:
        already = self.state == "aborted"
        self.abort()
        if not already and isinstance(error, Invalid | TooLarge):
            _record_refusal(self.uploader, self.exercise, self.ip, error, size=self.file.size)


def _record_refusal(
    uploader: User, exercise: Exercise, ip: str | None, error: LiaisonError, *, size: int
) -> None:
    """A file refused as a whole is on record (in its own transaction: the upload fails)."""
    with transaction.atomic():
        audit.record(
            actor=uploader,
            action="dataset.refused",
            target=("exercise", exercise.pk),
            exercise=exercise,
            ip=ip,
            reason=error.code,
            detail=error.detail[:300],
            bytes_received=size,
        )


def start_dataset_upload(
    *,
    uploader: User,
    exercise_id: object,
    filename: str,
    ip: str | None = None,
    at_least: int = 0,
) -> DatasetUpload:
    """Open an upload into an exercise the uploader may add data to. ``at_least`` (from the
    request's Content-Length) refuses a file over the limit before any of it is read."""
    exercise, membership = access.access_exchange(uploader, exercise_id)
    access.require_can_exchange(exercise, membership)
    limit = max_upload_bytes()
    if at_least > limit:
        error = TooLarge(
            _("The file is larger than the %(mib)s MiB limit for data sets.")
            % {"mib": limit // (1024 * 1024)},
            field="file",
        )
        _record_refusal(uploader, exercise, ip, error, size=0)
        raise error
    return DatasetUpload(uploader=uploader, exercise=exercise, filename=filename, ip=ip)


def upload_dataset(
    *,
    uploader: User,
    exercise_id: object,
    kind: str,
    filename: str,
    chunks: Iterable[bytes],
    columns: Mapping[str, str] | None = None,
    ip: str | None = None,
) -> DatasetResult:
    """Upload a whole file given as pieces (see ``DatasetUpload``)."""
    clean_kind(kind)
    upload = start_dataset_upload(
        uploader=uploader, exercise_id=exercise_id, filename=filename, ip=ip
    )
    try:
        for chunk in chunks:
            upload.write(chunk)
        upload.complete()
        return upload.record(kind=kind, columns=columns)
    finally:
        upload.abort()  # a no-op once recorded


def dataset_rows(dataset: Dataset) -> list[Any]:
    """The checked rows of a data set (``ListEntry`` or ``Declaration``)."""
    data = _read_blob(
        dataset.key_room_id, dataset.key_version, dataset.rows_storage_name, EXCHANGE_ROWS
    )
    with bulk_work():
        return parsing.decode_rows(data)[1]


def dataset_report(*, user: User, dataset_id: object) -> DatasetResult:
    """A data set with its listed bad rows, for anyone who may read the exercise's data."""
    dataset, _membership = access.access_dataset(user, dataset_id)
    data = _read_blob(
        dataset.key_room_id, dataset.key_version, dataset.rows_storage_name, EXCHANGE_ROWS
    )
    _kind, _rows, errors = parsing.decode_rows(data)
    return DatasetResult(dataset, [RowError(**error) for error in errors])


def list_datasets(*, user: User, exercise_id: object) -> list[Dataset]:
    exercise, _membership = access.access_exchange(user, exercise_id)
    return list(Dataset.objects.filter(exercise=exercise).select_related("uploaded_by__agency"))


def list_comparisons(*, user: User, exercise_id: object) -> list[Comparison]:
    exercise, _membership = access.access_exchange(user, exercise_id)
    return list(Comparison.objects.filter(exercise=exercise).select_related("run_by__agency"))


# --- running comparisons -----------------------------------------------------------------------------


@dataclass
class ComparisonRun:
    """A comparison and its result document (None while it runs, or if it failed); for a
    read, the reader's membership (None for an auditor)."""

    comparison: Comparison
    document: dict[str, Any] | None
    membership: Any = None


def _input(exercise: Exercise, ident: object, kind: str, name: str) -> Dataset:
    """A data set of this exercise, of the right kind, with no bad row."""
    if isinstance(ident, bool) or not isinstance(ident, int) or ident <= 0:
        raise Invalid(_("'%(name)s' must be a data set id.") % {"name": name}, field=name)
    dataset = Dataset.objects.filter(pk=ident, exercise=exercise).first()
    if dataset is None:
        raise Invalid(
            _("There is no data set %(id)s in this exercise.") % {"id": ident}, field=name
        )
    if dataset.kind != kind:
        raise Invalid(
            _("Data set %(id)s holds %(kind)s, not %(expected)s.")
            % {
                "id": ident,
                "kind": DatasetKind(dataset.kind).label,
                "expected": DatasetKind(kind).label,
            },
            field=name,
        )
    if dataset.status != DatasetStatus.ACCEPTED:
        raise Invalid(
            _(
                "Data set %(id)s has %(count)s bad cells and is not used: correct the file and "
                "upload it again."
            )
            % {"id": ident, "count": dataset.error_count},
            field=name,
        )
    return dataset


def _writable(actor: User, exercise_id: object) -> Exercise:
    exercise, membership = access.access_exchange(actor, exercise_id)
    access.require_can_exchange(exercise, membership)
    return exercise


def run_list_comparison(
    *,
    actor: User,
    exercise_id: object,
    allowed: object,
    prohibited: object,
    ip: str | None = None,
) -> ComparisonRun:
    """Which prefixes of an allowed-export list overlap a prohibited-import list."""
    exercise = _writable(actor, exercise_id)
    allowed_set = _input(exercise, allowed, DatasetKind.ALLOWED_LIST, "allowed")
    prohibited_set = _input(exercise, prohibited, DatasetKind.PROHIBITED_LIST, "prohibited")
    result = compare.compare_lists(dataset_rows(allowed_set), dataset_rows(prohibited_set))
    document = {
        "format": RESULT_FORMAT,
        "kind": ComparisonKind.LIST,
        "overlap": result.overlap,
        "pairs": [item.as_dict() for item in result.overlaps],
    }
    room = key_room(exercise)
    sealed = _seal_result(room, document)
    try:
        with transaction.atomic():
            comparison = Comparison.objects.create(
                exercise=exercise,
                kind=ComparisonKind.LIST,
                run_by=actor,
                allowed=allowed_set,
                prohibited=prohibited_set,
                key_room=room,
            )
            _finish(comparison, sealed, {"overlap": len(result.overlap)})
            _record_run(comparison, ip=ip)
            _announce(comparison, "done")
    except BaseException:
        sealed.blob.abort()
        raise
    return ComparisonRun(comparison, document)


def _tolerance(value: object) -> float:
    if value is None:
        return compare.DEFAULT_WEIGHT_TOLERANCE
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise Invalid(
            _("weight_tolerance must be a number from 0 to 1 (0.05 is 5 %)."),
            field="weight_tolerance",
        )
    return float(value)


def _digits(value: object) -> int:
    if value is None:
        return compare.DEFAULT_HS_DIGITS
    if isinstance(value, bool) or value not in compare.HS_DIGITS_CHOICES:
        raise Invalid(_("hs_digits must be 2, 4, 6, 8 or 10."), field="hs_digits")
    return int(value)  # type: ignore[call-overload]


def run_mirror_comparison(
    *,
    actor: User,
    exercise_id: object,
    exports: object,
    imports: object,
    prohibited: object = None,
    weight_tolerance: object = None,
    hs_digits: object = None,
    ip: str | None = None,
    background: bool | None = None,
) -> ComparisonRun:
    """Mirror exports against imports (``liaison.exchange.comparison``). Large inputs (see
    ``background_rows``) run on a worker thread: the comparison comes back running, its page
    shows the progress and the room hears when it starts and when it is done."""
    exercise = _writable(actor, exercise_id)
    tolerance = _tolerance(weight_tolerance)
    digits = _digits(hs_digits)
    exports_set = _input(exercise, exports, DatasetKind.EXPORT_DECLARATIONS, "exports")
    imports_set = _input(exercise, imports, DatasetKind.IMPORT_DECLARATIONS, "imports")
    prohibited_set = (
        _input(exercise, prohibited, DatasetKind.PROHIBITED_LIST, "prohibited")
        if prohibited is not None
        else None
    )
    if background is None:
        background = exports_set.rows + imports_set.rows > background_rows()
    fields = {
        "exercise": exercise,
        "kind": ComparisonKind.MIRROR,
        "run_by": actor,
        "exports": exports_set,
        "imports": imports_set,
        "prohibited": prohibited_set,
        "weight_tolerance": tolerance,
        "hs_digits": digits,
        "key_room": key_room(exercise),
    }
    if background:
        with transaction.atomic():
            comparison = Comparison.objects.create(**fields)
            _record_run(comparison, ip=ip)
            _announce(comparison, "started")
        _start_worker(comparison.pk)
        return ComparisonRun(comparison, None)
    document = _mirror_document(exports_set, imports_set, prohibited_set, tolerance, digits)
    sealed = _seal_result(fields["key_room"], document)
    try:
        with transaction.atomic():
            comparison = Comparison.objects.create(**fields)
            _finish(comparison, sealed, document["summary"])
            _record_run(comparison, ip=ip)
            _announce(comparison, "done")
    except BaseException:
        sealed.blob.abort()
        raise
    return ComparisonRun(comparison, document)


def _mirror_document(
    exports: Dataset,
    imports: Dataset,
    prohibited: Dataset | None,
    tolerance: float,
    digits: int,
    progress: Any = None,
) -> dict[str, Any]:
    prefixes = [entry.hs_code for entry in dataset_rows(prohibited)] if prohibited else []
    with bulk_work():
        result = compare.compare_declarations(
            dataset_rows(exports),
            dataset_rows(imports),
            prohibited=prefixes,
            weight_tolerance=tolerance,
            hs_digits=digits,
            progress=progress,
        )
        rows = [compare.pairing_row(pairing) for pairing in result.pairings]
    return {
        "format": RESULT_FORMAT,
        "kind": ComparisonKind.MIRROR,
        "parameters": {
            "weight_tolerance": tolerance,
            "hs_digits": digits,
            "prohibited_list": prohibited is not None,
        },
        "summary": result.summary,
        "outcomes": result.outcomes,
        "rows": rows,
    }


@dataclass
class _SealedResult:
    key_version: int
    blob: _SealedBlob


def _seal_result(room: Room, document: dict[str, Any]) -> _SealedResult:
    """The result document sealed into the store, before the transaction that names it (if
    that fails, ``_finish_or_discard`` deletes the blob again)."""
    key_version, _key = roomkeys.active_key(room.pk)
    with bulk_work():
        data = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
    return _SealedResult(key_version, _seal_bytes(room.pk, key_version, EXCHANGE_RESULT, data))


def _finish(comparison: Comparison, sealed: _SealedResult, summary: dict[str, int]) -> None:
    """Mark the comparison done with its sealed result (in the caller's transaction)."""
    comparison.status = ComparisonStatus.DONE
    comparison.progress = 100
    comparison.finished_at = timezone.now()
    comparison.summary = summary
    comparison.key_version = sealed.key_version
    comparison.result_storage_name = sealed.blob.name
    comparison.result_size = sealed.blob.size
    comparison.result_sha256 = sealed.blob.sha256
    comparison.save()


def _record_run(comparison: Comparison, *, ip: str | None) -> None:
    inputs = {
        name: getattr(comparison, f"{name}_id")
        for name in ("exports", "imports", "allowed", "prohibited")
        if getattr(comparison, f"{name}_id")
    }
    audit.record(
        actor=comparison.run_by,
        action="comparison.run",
        target=comparison,
        exercise=comparison.exercise,
        ip=ip,
        kind=comparison.kind,
        inputs=inputs,
        weight_tolerance=comparison.weight_tolerance,
        hs_digits=comparison.hs_digits,
        background=comparison.status == ComparisonStatus.RUNNING,
        summary=comparison.summary,
    )


# --- the worker thread ------------------------------------------------------------------------------

_workers: dict[int, threading.Thread] = {}
_workers_lock = threading.Lock()


def _start_worker(comparison_id: int) -> None:
    """Run the comparison on its own thread once the row that names it has committed."""

    def start() -> None:
        thread = threading.Thread(
            target=_work, args=(comparison_id,), name=f"comparison-{comparison_id}", daemon=True
        )
        with _workers_lock:
            _workers[comparison_id] = thread
        thread.start()

    transaction.on_commit(start)


def wait_for_comparison(comparison_id: int, timeout: float = 60.0) -> bool:
    """Wait for a background comparison's thread (tests, the benchmark); True once it ended."""
    with _workers_lock:
        thread = _workers.get(comparison_id)
    if thread is None:
        return True
    thread.join(timeout)
    return not thread.is_alive()


def _work(comparison_id: int) -> None:
    try:
        comparison = Comparison.objects.select_related(
            "exercise", "key_room", "run_by", "exports", "imports", "prohibited"
        ).get(pk=comparison_id)
        if comparison.status != ComparisonStatus.RUNNING:  # already done: run once only
            return
        last = {"percent": 0}

        def progress(fraction: float) -> None:
            percent = min(99, int(fraction * 100))
            if percent >= last["percent"] + 5:
                last["percent"] = percent
                Comparison.objects.filter(pk=comparison_id).update(progress=percent)

        assert comparison.exports is not None
        assert comparison.imports is not None
        document = _mirror_document(
            comparison.exports,
            comparison.imports,
            comparison.prohibited,
            comparison.weight_tolerance or compare.DEFAULT_WEIGHT_TOLERANCE,
            comparison.hs_digits or compare.DEFAULT_HS_DIGITS,
            progress,
        )
        sealed = _seal_result(comparison.key_room, document)
        try:
            with transaction.atomic():
                _finish(comparison, sealed, document["summary"])
                _announce(comparison, "done")
        except BaseException:
            sealed.blob.abort()
            raise
    except Exception as error:
        logger.exception("comparison %s failed", comparison_id)
        _fail_comparison(comparison_id, error)
    finally:
        with _workers_lock:
            _workers.pop(comparison_id, None)
        connection.close()


def _fail_comparison(comparison_id: int, error: Exception) -> None:
    try:
        with transaction.atomic():
            comparison = (
                Comparison.objects.select_for_update()
                .select_related("exercise", "key_room", "run_by")
                .get(pk=comparison_id)
            )
            comparison.status = ComparisonStatus.FAILED
            comparison.finished_at = timezone.now()
            comparison.failure = (getattr(error, "code", "") or error.__class__.__name__)[:200]
            comparison.save(update_fields=["status", "finished_at", "failure"])
            _announce(comparison, "failed")
    except Exception:
        logger.exception("comparison %s: its failure could not be recorded", comparison_id)


# --- telling the room ---------------------------------------------------------------------------------


def _sentence(comparison: Comparison, state: str) -> str:
    """One language's line about a comparison (the active one)."""
    values: dict[str, Any] = {"id": comparison.pk}
    if comparison.kind == ComparisonKind.LIST:
        count = comparison.summary.get("overlap", 0)
        return _(
            "List comparison #%(id)s: %(count)s HS prefixes the allowed-export list shares "
            "with the prohibited-import list."
        ) % {**values, "count": count}
    if state == "started":
        values.update(
            exports=comparison.exports.rows if comparison.exports else 0,
            imports=comparison.imports.rows if comparison.imports else 0,
        )
        return (
            _(
                "Mirror comparison #%(id)s started (%(exports)s exports against %(imports)s "
                "imports); its summary follows here when it is done."
            )
            % values
        )
    if state == "failed":
        return _("Mirror comparison #%(id)s failed; run it again.") % values
    summary = comparison.summary
    values.update(
        matched=summary.get(compare.MATCHED, 0),
        weight=summary.get(compare.WEIGHT_MISMATCH, 0),
        hs=summary.get(compare.HS_MISMATCH, 0),
        export_only=summary.get(compare.EXPORT_ONLY, 0),
        import_only=summary.get(compare.IMPORT_ONLY, 0),
        prohibited=summary.get(compare.PROHIBITED_HITS, 0),
    )
    return (
        _(
            "Mirror comparison #%(id)s: %(matched)s matched, %(weight)s weight mismatch, "
            "%(hs)s HS mismatch, %(export_only)s export only, %(import_only)s import only, "
            "%(prohibited)s prohibited-list hits."
        )
        % values
    )


def summary_text(comparison: Comparison, state: str = "done") -> str:
    """The room's message about a comparison: one line per language of the exercise's two
    sides, and where the full result is."""
    lines: list[str] = []
    for language in SUMMARY_LANGUAGES:
        with translation.override(language):
            line = _sentence(comparison, state)
        if line not in lines:
            lines.append(line)
    lines.append(reverse("comparison", args=[comparison.pk]))
    return "\n".join(lines)


def _announce(comparison: Comparison, state: str) -> None:
    """A system message in the exercise's first room, posted as the officer who ran it."""
    messaging.send_message(
        sender=comparison.run_by,
        room_id=comparison.key_room_id,
        client_id=f"comparison-{comparison.pk}-{state}",
        body=summary_text(comparison, state),
        kind=MessageKind.SYSTEM,
    )


# --- reading results ------------------------------------------------------------------------------------


def result_document(comparison: Comparison) -> dict[str, Any] | None:
    """The sealed result of a finished comparison (None while running or after a failure)."""
    if comparison.status != ComparisonStatus.DONE or not comparison.result_storage_name:
        return None
    assert comparison.key_version is not None
    data = _read_blob(
        comparison.key_room_id,
        comparison.key_version,
        comparison.result_storage_name,
        EXCHANGE_RESULT,
    )
    with bulk_work():
        return json.loads(data)


def read_comparison(*, user: User, comparison_id: object, ip: str | None = None) -> ComparisonRun:
    """A comparison and its result, for the exercise's members and auditors (an auditor's
    read is on record, as every auditor read is)."""
    comparison, membership = access.access_comparison(user, comparison_id)
    document = result_document(comparison)
    if membership is None:
        with transaction.atomic():
            audit.record(
                actor=user,
                action="comparison.viewed",
                target=comparison,
                exercise=comparison.exercise,
                ip=ip,
                as_auditor=True,
            )
    return ComparisonRun(comparison, document, membership)


# --- downloads ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResultFile:
    filename: str
    content_type: str
    data: bytes


def _finished_document(run: ComparisonRun) -> dict[str, Any]:
    if run.document is None:
        raise Conflict(
            _("Comparison #%(id)s is still running.") % {"id": run.comparison.pk}
            if run.comparison.status == ComparisonStatus.RUNNING
            else _("Comparison #%(id)s failed and has no result.") % {"id": run.comparison.pk}
        )
    return run.document


def export_comparison(
    *,
    user: User,
    comparison_id: object,
    file_format: str,
    outcome: str = "",
    ip: str | None = None,
) -> ResultFile:
    """A comparison's result as CSV or XLSX (formulas neutralised), optionally one outcome's
    rows; every download is on record."""
    if file_format not in export.FORMATS:
        raise Invalid(_("format must be csv or xlsx."), field="format")
    comparison, _membership = access.access_comparison(user, comparison_id)
    document = _finished_document(ComparisonRun(comparison, result_document(comparison)))
    rows = None
    if document["kind"] == ComparisonKind.MIRROR:
        rows = compare.filter_rows(document["rows"], outcome=outcome)
    data = export.result_file(document, file_format, rows)
    with transaction.atomic():
        audit.record(
            actor=user,
            action="comparison.exported",
            target=comparison,
            exercise=comparison.exercise,
            ip=ip,
            format=file_format,
            outcome=outcome,
            rows=len(rows) if rows is not None else len(document.get("pairs", [])),
            sha256=hashlib.sha256(data).hexdigest(),
        )
    suffix = f"-{outcome}" if outcome else ""
    return ResultFile(
        filename=f"{comparison.exercise.code}-comparison-{comparison.pk}{suffix}.{file_format}",
        content_type=export.CSV_CONTENT_TYPE
        if file_format == export.CSV
        else export.XLSX_CONTENT_TYPE,
        data=data,
    )


# --- hand-over -------------------------------------------------------------------------------------

HANDOVER_FORMAT = "liaison-handover"
HANDOVER_VERSION = 1
RECIPIENT_MAX_CHARS = 200


def _input_entry(dataset: Dataset) -> dict[str, Any]:
    return {
        "id": dataset.pk,
        "kind": dataset.kind,
        "name": records.open_dataset_name(dataset),
        "format": dataset.file_format,
        "size": dataset.size,
        "sha256": dataset.sha256,
        "rows": dataset.rows,
        "uploaded_by": dataset.uploaded_by.display_name,
        "agency": dataset.uploaded_by.agency.name if dataset.uploaded_by.agency_id else "",
        "uploaded_at": dataset.created_at.astimezone(dt.UTC).isoformat(timespec="seconds"),
    }


def hand_over_comparison(
    *, user: User, comparison_id: object, recipient: str, ip: str | None = None
) -> ResultFile:
    """The comparison's result as a package for the departments that act on it: the result
    as CSV and XLSX and a manifest (exercise, comparison, its inputs with their SHA-256, who
    handed it to whom and when, every file's size and SHA-256) signed with the audit key, so
    ``liaison/audit/offline_verifier.py`` checks it with the public key alone. The hand-over
    is on record. Members and coordinators hand over, in an active or closed exercise."""
    comparison, membership = access.access_comparison(user, comparison_id)
    if membership is None or membership.role == GroupRole.OBSERVER:
        raise PermissionDenied(_("Only members and coordinators of the exercise hand data over."))
    if comparison.exercise.status not in {ExerciseStatus.ACTIVE, ExerciseStatus.CLOSED}:
        raise RoomClosed(_("This exercise is not active: its data is read-only."))
    recipient = " ".join(str(recipient or "").split())
    if not recipient:
        raise Invalid(_("Name the departments the data is handed to."), field="recipient")
    if len(recipient) > RECIPIENT_MAX_CHARS:
        raise Invalid(
            _("The recipient holds at most %(limit)s characters.") % {"limit": RECIPIENT_MAX_CHARS},
            field="recipient",
        )
    document = _finished_document(ComparisonRun(comparison, result_document(comparison)))
    stem = f"{comparison.exercise.code}-comparison-{comparison.pk}"
    files = {
        f"{stem}.csv": export.result_file(document, export.CSV),
        f"{stem}.xlsx": export.result_file(document, export.XLSX),
    }
    inputs = [
        _input_entry(dataset)
        for dataset in (
            comparison.exports,
            comparison.imports,
            comparison.allowed,
            comparison.prohibited,
        )
        if dataset is not None
    ]
    now = timezone.now().astimezone(dt.UTC).isoformat(timespec="seconds")
    manifest = {
        "format": HANDOVER_FORMAT,
        "version": HANDOVER_VERSION,
        "created_at": now,
        "exercise": {
            "id": comparison.exercise.pk,
            "code": comparison.exercise.code,
            "title": comparison.exercise.title,
        },
        "comparison": {
            "id": comparison.pk,
            "kind": comparison.kind,
            "run_by": comparison.run_by.display_name,
            "created_at": comparison.created_at.astimezone(dt.UTC).isoformat(timespec="seconds"),
            "weight_tolerance": comparison.weight_tolerance,
            "hs_digits": comparison.hs_digits,
            "summary": comparison.summary,
            "result_sha256": comparison.result_sha256,
            "inputs": inputs,
        },
        "handed_over": {
            "by": user.display_name,
            "agency": user.agency.name if user.agency_id else "",
            "to": recipient,
            "at": now,
        },
        "files": [
            {"name": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            for name, data in files.items()
        ],
        "signature": {"algorithm": "Ed25519", "public_key": signing.public_key_b64()},
    }
    manifest_bytes = json.dumps(manifest, ensure_ascii=False, indent=2).encode()
    signature = base64.b64encode(signing.sign(manifest_bytes)).decode() + "\n"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as package:
        for name, data in files.items():
            package.writestr(name, data)
        package.writestr("manifest.json", manifest_bytes)
        package.writestr("manifest.sig", signature)
    data = buffer.getvalue()
    with transaction.atomic():
        audit.record(
            actor=user,
            action="comparison.handed_over",
            target=comparison,
            exercise=comparison.exercise,
            ip=ip,
            recipient=recipient,
            manifest_sha256=hashlib.sha256(manifest_bytes).hexdigest(),
            package_sha256=hashlib.sha256(data).hexdigest(),
        )
    return ResultFile(filename=f"{stem}-handover.zip", content_type="application/zip", data=data)
