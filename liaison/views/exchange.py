"""Exercise data exchange over HTTP: data set uploads, list and mirror comparisons, results and
their downloads (docs/api/exchange.md), and the pages officers use for the same.

A data set's file goes from the multipart parser straight into ``DatasetUpload``, sealed as it
arrives (the body streams to the view: ``takes_large_body``), exactly as an attachment does.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.core.files.uploadhandler import FileUploadHandler, SkipFile, StopUpload
from django.http import HttpRequest, HttpResponse, JsonResponse, UnreadablePostError
from django.http.multipartparser import MultiPartParserError
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt, csrf_protect

from liaison import payloads, schemas
from liaison.errors import Invalid, LiaisonError, NotFound, TooLarge
from liaison.exchange import comparison as compare
from liaison.exchange.parsing import ColumnsNotFound
from liaison.models import DatasetStatus
from liaison.request_bodies import takes_large_body
from liaison.services import exchange
from liaison.views.attachments import content_disposition
from liaison.views.base import api_endpoint, client_ip, json_error, page, parse_json
from liaison.views.limits import declared_length, limit_requests

FILE_FIELD = "file"
MULTIPART_FRAMING_BYTES = 64 * 1024
# Rows of a comparison's side-by-side result per answer, unless ``limit`` asks for fewer.
MAX_ROWS_PER_ANSWER = 10_000


class DatasetUploadHandler(FileUploadHandler):
    """Feeds the ``file`` part of a multipart body, piece by piece, to a data set upload.

    An error is kept in ``error`` and stops the parser at once; whatever was written is deleted
    unless the view records the upload (``discard()`` in every other case).
    """

    def __init__(self, request: HttpRequest, *, exercise_id: int, at_least: int = 0) -> None:
        super().__init__(request)
        self.exercise_id = exercise_id
        self.at_least = at_least
        self.upload: exchange.DatasetUpload | None = None
        self.error: LiaisonError | None = None

    def _stop(self, error: LiaisonError) -> None:
        self.error = error
        self.discard()
        raise StopUpload(connection_reset=True)

    def new_file(self, field_name: str, file_name: str, *args: Any, **kwargs: Any) -> None:
        super().new_file(field_name, file_name, *args, **kwargs)
        if field_name != FILE_FIELD:
            raise SkipFile()
        if self.upload is not None:
            self._stop(Invalid(_("Send one file per request."), field=FILE_FIELD))
        try:
            self.upload = exchange.start_dataset_upload(
                uploader=self.request.user,
                exercise_id=self.exercise_id,
                filename=file_name,
                ip=client_ip(self.request),
                at_least=self.at_least,
            )
        except LiaisonError as error:
            self._stop(error)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        assert self.upload is not None
        try:
            self.upload.write(raw_data)
        except LiaisonError as error:
            self._stop(error)
        return None

    def file_complete(self, file_size: int) -> None:
        assert self.upload is not None
        try:
            self.upload.complete()
        except LiaisonError as error:
            self._stop(error)
        return None

    def upload_interrupted(self) -> None:
        self.discard()

    def discard(self) -> None:
        if self.upload is not None:
            self.upload.abort()


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
        return JsonResponse({"datasets": [payloads.dataset_payload(d) for d in rows]})
    try:
        result = receive_dataset(request, exercise_id)
    except ColumnsNotFound as error:
        return columns_not_found(error)
    status = 201 if result.dataset.status == DatasetStatus.ACCEPTED else 422
    return JsonResponse(
        payloads.dataset_payload(result.dataset, errors=result.errors), status=status
    )


@api_endpoint("GET")
def dataset(request: HttpRequest, dataset_id: int) -> HttpResponse:
    """A data set with its listed bad rows."""
    result = exchange.dataset_report(user=request.user, dataset_id=dataset_id)
    return JsonResponse(payloads.dataset_payload(result.dataset, errors=result.errors))


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
    return JsonResponse(payloads.comparison_payload(run.comparison, run.document), status=201)


@api_endpoint("GET", "POST")
def comparisons(request: HttpRequest, exercise_id: int) -> HttpResponse:
    """GET: the exercise's comparisons. POST ``{exports, imports, prohibited?,
    weight_tolerance?, hs_digits?}``: run a mirror comparison → 201 with its result, or 202
    while a large one runs in the background."""
    if request.method == "GET":
        runs = exchange.list_comparisons(user=request.user, exercise_id=exercise_id)
        return JsonResponse({"comparisons": [payloads.comparison_payload(c, None) for c in runs]})
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
    return JsonResponse(payloads.comparison_payload(run.comparison, run.document), status=status)


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
        return JsonResponse(payloads.comparison_payload(run.comparison, run.document))
    outcome = request.GET.get("outcome", "")
    offset = _query_int(request, "offset", 0, minimum=0)
    limit = min(_query_int(request, "limit", MAX_ROWS_PER_ANSWER, minimum=1), MAX_ROWS_PER_ANSWER)
    rows = compare.filter_rows(run.document["rows"], outcome=outcome)
    return JsonResponse(
        payloads.comparison_payload(
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


@page
def exchange_page(request: HttpRequest, exercise_id: int) -> HttpResponse:
    """The exercise's data sets and comparisons (the page itself comes next)."""
    raise NotFound()


@page
def comparison_page(request: HttpRequest, comparison_id: int) -> HttpResponse:
    """A comparison's results (the page itself comes next)."""
    raise NotFound()
