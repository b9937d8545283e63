"""Exercise data exchange over HTTP and its pages (docs/api/exchange.md). A data set's file is
sealed as it arrives (``takes_large_body``, ``DatasetUpload``), as an attachment's is."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import HttpRequest, HttpResponse, JsonResponse, UnreadablePostError
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_POST

from liaison import access, schemas
from liaison.errors import Conflict, Invalid, LiaisonError, TooLarge
from liaison.exchange import comparison as compare
from liaison.exchange.parsing import ColumnsNotFound
from liaison.models import DatasetKind, DatasetStatus
from liaison.payloads import exchange as exchange_payloads
from liaison.request_bodies import takes_large_body
from liaison.services import exchange
from liaison.views.attachments import content_disposition
from liaison.views.base import api_endpoint, client_ip, json_error, page, parse_json
from liaison.views.limits import declared_length, limit_requests
from liaison.views.uploads import FILE_FIELD, MULTIPART_FRAMING_BYTES, SealingUploadHandler

# Rows of a comparison's side-by-side result per answer, unless ``limit`` asks for fewer.
MAX_ROWS_PER_ANSWER = 10_000


class DatasetUploadHandler(SealingUploadHandler):
    """The ``file`` part of a data set upload, sealed as it arrives."""

    def __init__(self, request: HttpRequest, *, exercise_id: int, at_least: int = 0) -> None:
        super().__init__(request, at_least=at_least)
        self.exercise_id = exercise_id

    def start(self, file_name: str) -> exchange.DatasetUpload:
        return exchange.start_dataset_upload(
            uploader=self.request.user,
            exercise_id=self.exercise_id,
            filename=file_name,
            ip=client_ip(self.request),
            at_least=self.at_least,
        )


def columns_not_found(error: ColumnsNotFound) -> JsonResponse:
    """The refusal of a file whose columns were not recognised, with what the mapping needs:
    the missing fields and the file's headers."""
    return json_error(
        error.code,
        error.detail,
        error.http_status,
        field=error.field,
        missing=error.missing,
        headers=error.headers,
    )


def receive_dataset(request: HttpRequest, exercise_id: int) -> exchange.DatasetResult:
    """Parse a multipart upload into a recorded data set (shared by the API and the page)."""
    if not request.content_type.startswith("multipart/form-data"):
        raise Invalid(_("Send the file as multipart/form-data in the field 'file'."))
    at_least = max(0, declared_length(request) - MULTIPART_FRAMING_BYTES)
    handler = DatasetUploadHandler(request, exercise_id=exercise_id, at_least=at_least)
    request.upload_handlers = [handler]
    try:
        return _receive_checked(request, handler)
    except (RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent):
        raise TooLarge(_("The request carries too many or too large form fields.")) from None
    except (MultiPartParserError, UnreadablePostError):
        raise Invalid(_("The multipart body is malformed.")) from None
    finally:
        handler.discard()


@csrf_protect
def _receive_checked(request: HttpRequest, handler: DatasetUploadHandler) -> Any:
    request.FILES  # noqa: B018 - parsing the body runs the upload handler
    if handler.error is not None:
        raise handler.error
    if handler.upload is None or handler.upload.state != "complete":
        raise Invalid(_("Attach the file in the multipart field 'file'."), field=FILE_FIELD)
    kind = exchange.clean_kind(request.POST.get("kind", ""))
    columns = schemas.parse_column_mapping(request.POST.get("columns", ""))
    # The page's mapping step names each field in its own select (``column_<field>``).
    for name, value in request.POST.items():
        if name.startswith("column_") and value:
            columns.setdefault(name.removeprefix("column_")[:40], value[:200])
    return handler.upload.record(kind=kind, columns=columns)


# --- the JSON API ----------------------------------------------------------------------------------


@takes_large_body(lambda: exchange.max_upload_bytes() + MULTIPART_FRAMING_BYTES)
@csrf_exempt
@api_endpoint("GET", "POST")
@limit_requests("upload", methods=["POST"])
@limit_requests("upload.bytes", methods=["POST"], cost=declared_length)
def datasets(request: HttpRequest, exercise_id: int) -> HttpResponse:
    """GET: the exercise's data sets. POST (multipart: ``file``, ``kind``, optional
    ``columns``): upload one → 201 accepted, or 422 with every bad row listed."""
    if request.method == "GET":
        rows = exchange.list_datasets(user=request.user, exercise_id=exercise_id)
        return JsonResponse({"datasets": [exchange_payloads.dataset_payload(d) for d in rows]})
    try:
        result = receive_dataset(request, exercise_id)
    except ColumnsNotFound as error:
        return columns_not_found(error)
    status = 201 if result.dataset.status == DatasetStatus.ACCEPTED else 422
    return JsonResponse(
        exchange_payloads.dataset_payload(result.dataset, errors=result.errors), status=status
    )


@api_endpoint("GET")
def dataset(request: HttpRequest, dataset_id: int) -> HttpResponse:
    """A data set with its listed bad rows."""
    result = exchange.dataset_report(user=request.user, dataset_id=dataset_id)
    return JsonResponse(exchange_payloads.dataset_payload(result.dataset, errors=result.errors))


@api_endpoint("POST")
def list_comparisons(request: HttpRequest, exercise_id: int) -> HttpResponse:
    """``{allowed, prohibited}`` → the prefixes both lists cover."""
    body = schemas.parse(schemas.ListComparisonRequest, parse_json(request))
    run = exchange.run_list_comparison(
        actor=request.user,
        exercise_id=exercise_id,
        allowed=body.allowed,
        prohibited=body.prohibited,
        ip=client_ip(request),
    )
    return JsonResponse(
        exchange_payloads.comparison_payload(run.comparison, run.document), status=201
    )


@api_endpoint("GET", "POST")
def comparisons(request: HttpRequest, exercise_id: int) -> HttpResponse:
    """GET: the exercise's comparisons. POST ``{exports, imports, prohibited?,
    weight_tolerance?, hs_digits?}``: run a mirror comparison → 201 with its result, or 202
    while a large one runs in the background."""
    if request.method == "GET":
        runs = exchange.list_comparisons(user=request.user, exercise_id=exercise_id)
        return JsonResponse(
            {"comparisons": [exchange_payloads.comparison_payload(c, None) for c in runs]}
        )
    body = schemas.parse(schemas.MirrorComparisonRequest, parse_json(request))
    run = exchange.run_mirror_comparison(
        actor=request.user,
        exercise_id=exercise_id,
        exports=body.exports,
        imports=body.imports,
        prohibited=body.prohibited,
        weight_tolerance=body.weight_tolerance,
        hs_digits=body.hs_digits,
        ip=client_ip(request),
    )
    status = 201 if run.document is not None else 202
    return JsonResponse(
        exchange_payloads.comparison_payload(run.comparison, run.document), status=status
    )


def _query_int(request: HttpRequest, name: str, default: int, *, minimum: int) -> int:
    raw = request.GET.get(name, "")
    if raw == "":
        return default
    if not raw.isdigit() or int(raw) < minimum:
        raise Invalid(
            _("'%(name)s' must be an integer of at least %(minimum)s.")
            % {"name": name, "minimum": minimum},
            field=name,
        )
    return int(raw)


@api_endpoint("GET")
def comparison(request: HttpRequest, comparison_id: int) -> HttpResponse:
    """A comparison, its result and its rows side by side (``outcome``, ``offset``, ``limit``
    narrow the rows)."""
    run = exchange.read_comparison(
        user=request.user, comparison_id=comparison_id, ip=client_ip(request)
    )
    if run.comparison.kind != "mirror" or run.document is None:
        return JsonResponse(exchange_payloads.comparison_payload(run.comparison, run.document))
    outcome = request.GET.get("outcome", "")
    offset = _query_int(request, "offset", 0, minimum=0)
    limit = min(_query_int(request, "limit", MAX_ROWS_PER_ANSWER, minimum=1), MAX_ROWS_PER_ANSWER)
    rows = compare.filter_rows(run.document["rows"], outcome=outcome)
    return JsonResponse(
        exchange_payloads.comparison_payload(
            run.comparison,
            run.document,
            rows=[compare.row_as_dict(row) for row in rows[offset : offset + limit]],
            rows_total=len(rows),
        )
    )


def file_response(result: exchange.ResultFile) -> HttpResponse:
    response = HttpResponse(result.data, content_type=result.content_type)
    response["Content-Disposition"] = content_disposition(result.filename)
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@api_endpoint("GET")
def comparison_export(request: HttpRequest, comparison_id: int) -> HttpResponse:
    """The result as a file: ``format`` csv (default) or xlsx, optionally one ``outcome``."""
    result = exchange.export_comparison(
        user=request.user,
        comparison_id=comparison_id,
        file_format=request.GET.get("format", "csv"),
        outcome=request.GET.get("outcome", ""),
        ip=client_ip(request),
    )
    return file_response(result)


# --- pages ----------------------------------------------------------------------------------------

RESULT_ROWS_PER_PAGE = 200


def outcome_labels() -> dict[str, str]:
    """What each outcome is called on the page (the API and the files keep the codes)."""
    return {
        compare.MATCHED: _("matched"),
        compare.WEIGHT_MISMATCH: _("weight mismatch"),
        compare.HS_MISMATCH: _("HS mismatch"),
        compare.EXPORT_ONLY: _("export only"),
        compare.IMPORT_ONLY: _("import only"),
        compare.PROHIBITED_HITS: _("prohibited-list hits"),
    }


def _shown_row(row: list[Any], labels: dict[str, str]) -> dict[str, Any]:
    shown = compare.row_as_dict(row)
    shown["outcome_label"] = labels[shown["outcome"]]
    shown["note_label"] = (
        _("the bills of lading differ")
        if shown["note"] == compare.BILL_OF_LADING_DIFFERS
        else shown["note"]
    )
    difference = shown["mass_difference"]
    shown["difference_percent"] = None if difference is None else difference * 100
    return shown


def _exchange_context(request: HttpRequest, exercise_id: int, **extra: Any) -> dict[str, Any]:
    exercise, membership = access.access_exchange(request.user, exercise_id)
    datasets = exchange.list_datasets(user=request.user, exercise_id=exercise.pk)
    report = None
    shown = request.GET.get("dataset", "")
    if shown.isdigit():
        report = exchange.dataset_report(user=request.user, dataset_id=int(shown))
        if report.dataset.exercise_id != exercise.pk:
            report = None
    try:
        access.require_can_exchange(exercise, membership)
        can_write = True
    except LiaisonError:
        can_write = False
    by_kind: dict[str, list[Any]] = {kind: [] for kind in DatasetKind.values}
    for dataset in datasets:
        if dataset.status == DatasetStatus.ACCEPTED:
            by_kind[dataset.kind].append(dataset)
    return {
        "exercise": exercise,
        "room": exchange.key_room(exercise) if exercise.rooms.exists() else None,
        "datasets": [(d, exchange_payloads.dataset_payload(d)) for d in datasets],
        "comparisons": exchange.list_comparisons(user=request.user, exercise_id=exercise.pk),
        "report": report,
        "can_write": can_write,
        "kinds": DatasetKind.choices,
        "usable": by_kind,
        "hs_digits_choices": compare.HS_DIGITS_CHOICES,
        "default_tolerance": round(compare.DEFAULT_WEIGHT_TOLERANCE * 100, 2),
        "max_mib": exchange.max_upload_bytes() // (1024 * 1024),
        **extra,
    }


@login_required
@require_GET
@page
def exchange_page(request: HttpRequest, exercise_id: int) -> HttpResponse:
    """The exercise's data sets (with a rejected file's bad rows), the upload and comparison
    forms, and the comparisons run so far."""
    return render(
        request, "liaison/exchange/exercise.html", _exchange_context(request, exercise_id)
    )


@takes_large_body(lambda: exchange.max_upload_bytes() + MULTIPART_FRAMING_BYTES)
@csrf_exempt
@login_required
@require_POST
@limit_requests("upload", html=True)
@limit_requests("upload.bytes", cost=declared_length, html=True)
@page
def exchange_upload(request: HttpRequest, exercise_id: int) -> HttpResponse:
    """The page's upload form; unrecognised columns come back as the mapping step."""
    try:
        result = receive_dataset(request, exercise_id)
    except ColumnsNotFound as error:
        context = _exchange_context(
            request, exercise_id, mapping=error, mapping_kind=request.POST.get("kind", "")
        )
        return render(request, "liaison/exchange/exercise.html", context, status=400)
    except (Invalid, TooLarge) as error:
        context = _exchange_context(request, exercise_id, upload_error=error.detail)
        return render(request, "liaison/exchange/exercise.html", context, status=error.http_status)
    url = reverse("exchange", args=[exercise_id])
    return redirect(f"{url}?dataset={result.dataset.pk}#report")


def _form_int(request: HttpRequest, name: str) -> int | None:
    raw = request.POST.get(name, "").strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise Invalid(_("Choose a data set for '%(name)s'.") % {"name": name}, field=name)
    return int(raw)


def _form_tolerance(request: HttpRequest) -> float | None:
    raw = request.POST.get("weight_tolerance", "").strip().replace(",", ".")
    if not raw:
        return None
    try:
        return float(raw) / 100
    except ValueError:
        raise Invalid(
            _("The weight tolerance is a percentage, such as 5."), field="weight_tolerance"
        ) from None


@login_required
@require_POST
@page
def exchange_compare(request: HttpRequest, exercise_id: int) -> HttpResponse:
    """The page's comparison forms: a list comparison or a mirror comparison."""
    try:
        if request.POST.get("comparison") == "list":
            run = exchange.run_list_comparison(
                actor=request.user,
                exercise_id=exercise_id,
                allowed=_form_int(request, "allowed"),
                prohibited=_form_int(request, "prohibited"),
                ip=client_ip(request),
            )
        else:
            digits = request.POST.get("hs_digits", "").strip()
            run = exchange.run_mirror_comparison(
                actor=request.user,
                exercise_id=exercise_id,
                exports=_form_int(request, "exports"),
                imports=_form_int(request, "imports"),
                prohibited=_form_int(request, "prohibited"),
                weight_tolerance=_form_tolerance(request),
                hs_digits=int(digits) if digits.isdigit() else None,
                ip=client_ip(request),
            )
    except (Invalid, Conflict) as error:
        context = _exchange_context(request, exercise_id, compare_error=error.detail)
        return render(request, "liaison/exchange/exercise.html", context, status=400)
    return redirect("comparison", run.comparison.pk)


@login_required
@require_GET
@page
def comparison_page(request: HttpRequest, comparison_id: int) -> HttpResponse:
    """A comparison's counts, its rows side by side (by outcome, a page at a time) and its
    downloads; a running one shows its progress and refreshes itself."""
    run = exchange.read_comparison(
        user=request.user, comparison_id=comparison_id, ip=client_ip(request)
    )
    comparison = run.comparison
    context: dict[str, Any] = {
        "comparison": comparison,
        "exercise": comparison.exercise,
        "document": run.document,
        "payload": exchange_payloads.comparison_payload(comparison, run.document),
        "outcome": "",
        "can_hand_over": run.document is not None
        and run.membership is not None
        and run.membership.role != "observer",
    }
    if run.document is not None and comparison.kind == "mirror":
        outcome = request.GET.get("outcome", "")
        rows = compare.filter_rows(run.document["rows"], outcome=outcome)
        labels = outcome_labels()
        number = _page_number(request)
        start = (number - 1) * RESULT_ROWS_PER_PAGE
        context.update(
            outcome=outcome,
            outcome_counts=[
                (name, labels[name], run.document["summary"].get(name, 0))
                for name in compare.OUTCOMES
            ],
            rows=[_shown_row(row, labels) for row in rows[start : start + RESULT_ROWS_PER_PAGE]],
            rows_total=len(rows),
            page_number=number,
            first_row=start + 1,
            has_previous=number > 1,
            has_next=start + RESULT_ROWS_PER_PAGE < len(rows),
        )
    return render(request, "liaison/exchange/comparison.html", context)


def _page_number(request: HttpRequest) -> int:
    raw = request.GET.get("page", "1")
    return max(1, int(raw)) if raw.isdigit() and len(raw) < 7 else 1


@api_endpoint("POST")
def comparison_handover(request: HttpRequest, comparison_id: int) -> HttpResponse:
    """``{"recipient": "..."}`` → the signed hand-over package (ZIP)."""
    body = schemas.parse(schemas.HandoverRequest, parse_json(request))
    return file_response(
        exchange.hand_over_comparison(
            user=request.user,
            comparison_id=comparison_id,
            recipient=body.recipient,
            ip=client_ip(request),
        )
    )


@login_required
@require_POST
@page
def comparison_handover_page(request: HttpRequest, comparison_id: int) -> HttpResponse:
    """The results page's hand-over form: the package downloads at once."""
    return file_response(
        exchange.hand_over_comparison(
            user=request.user,
            comparison_id=comparison_id,
            recipient=request.POST.get("recipient", ""),
            ip=client_ip(request),
        )
    )
