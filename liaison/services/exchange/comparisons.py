"""Running comparisons on an exercise's data sets (list overlap, mirror), listing, reading."""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext as _

from liaison import access, audit
from liaison.errors import (
    Invalid,
)
from liaison.exchange import comparison as compare
from liaison.models import (
    Comparison,
    ComparisonKind,
    ComparisonStatus,
    Dataset,
    DatasetKind,
    DatasetStatus,
    Exercise,
    User,
)
from liaison.services.exchange.announcements import announce
from liaison.services.exchange.background import queue_comparison
from liaison.services.exchange.datasets import dataset_rows
from liaison.services.exchange.results import (
    RESULT_FORMAT,
    ComparisonRun,
    finish_comparison,
    mirror_document,
    result_document,
    seal_result,
)
from liaison.services.exchange.sealing import background_rows, key_room


def list_comparisons(*, user: User, exercise_id: object) -> list[Comparison]:
    exercise, _membership = access.access_exchange(user, exercise_id)
    return list(Comparison.objects.filter(exercise=exercise).select_related("run_by__agency"))


# --- running comparisons -----------------------------------------------------------------------------


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
    sealed = seal_result(room, document)
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
            finish_comparison(comparison, sealed, {"overlap": len(result.overlap)})
            _record_run(comparison, ip=ip)
            announce(comparison, "done")
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
    ``background_rows``) run as a job: the comparison comes back running, its page
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
            queue_comparison(comparison.pk)
            _record_run(comparison, ip=ip)
            announce(comparison, "started")
        return ComparisonRun(comparison, None)
    document = mirror_document(exports_set, imports_set, prohibited_set, tolerance, digits)
    sealed = seal_result(fields["key_room"], document)
    try:
        with transaction.atomic():
            comparison = Comparison.objects.create(**fields)
            finish_comparison(comparison, sealed, document["summary"])
            _record_run(comparison, ip=ip)
            announce(comparison, "done")
    except BaseException:
        sealed.blob.abort()
        raise
    return ComparisonRun(comparison, document)


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
