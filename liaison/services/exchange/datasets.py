"""Data sets: uploads sealed as they arrive, checked, stored, and their reports read back."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from liaison import access, audit
from liaison.crypto import roomkeys
from liaison.crypto.records import (
    EXCHANGE_FILE,
    EXCHANGE_ROWS,
    seal_dataset_name,
)
from liaison.errors import (
    Invalid,
    LiaisonError,
    TooLarge,
)
from liaison.exchange import parsing
from liaison.exchange.parsing import RowError
from liaison.models import (
    Dataset,
    DatasetKind,
    DatasetStatus,
    Exercise,
    User,
)
from liaison.services.attachments import clean_filename
from liaison.services.exchange.sealing import (
    SealedBlob,
    bulk_work,
    key_room,
    limits,
    max_upload_bytes,
    read_blob,
    seal_bytes,
)


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
        self.file = SealedBlob(
            room_id=self.room.pk, key_version=self.key_version, key=key, kind=EXCHANGE_FILE
        )
        self.rows_blob: SealedBlob | None = None
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
            self.rows_blob = seal_bytes(
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
    data = read_blob(
        dataset.key_room_id, dataset.key_version, dataset.rows_storage_name, EXCHANGE_ROWS
    )
    with bulk_work():
        return parsing.decode_rows(data)[1]


def dataset_report(*, user: User, dataset_id: object) -> DatasetResult:
    """A data set with its listed bad rows, for anyone who may read the exercise's data."""
    dataset, _membership = access.access_dataset(user, dataset_id)
    data = read_blob(
        dataset.key_room_id, dataset.key_version, dataset.rows_storage_name, EXCHANGE_ROWS
    )
    _kind, _rows, errors = parsing.decode_rows(data)
    return DatasetResult(dataset, [RowError(**error) for error in errors])


def list_datasets(*, user: User, exercise_id: object) -> list[Dataset]:
    exercise, _membership = access.access_exchange(user, exercise_id)
    return list(Dataset.objects.filter(exercise=exercise).select_related("uploaded_by__agency"))
