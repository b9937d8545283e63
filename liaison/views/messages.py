"""Messages over HTTP: the same services and idempotency as the room WebSocket, for clients
that cannot hold a socket open (docs/api/messages.md)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _

from liaison import payloads, schemas, selectors
from liaison.errors import Invalid
from liaison.services import messaging, reading
from liaison.views.base import api_endpoint, client_ip, parse_json
from liaison.views.limits import limit_requests


def _query_int(request: HttpRequest, name: str, *, minimum: int) -> int | None:
    raw = request.GET.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise Invalid(_("'%(name)s' must be an integer.") % {"name": name}, field=name) from None
    if value < minimum:
        raise Invalid(
            _("'%(name)s' must be at least %(minimum)s.") % {"name": name, "minimum": minimum},
            field=name,
        )
    return value


def _list_messages(request: HttpRequest, room_id: int) -> HttpResponse:
    before = _query_int(request, "before", minimum=1)
    after = _query_int(request, "after", minimum=0)
    limit = _query_int(request, "limit", minimum=1)
    if before is not None and after is not None:
        raise Invalid(_("Use either 'before' or 'after', not both."))
    if after is not None:
        page = reading.read_since(
            user=request.user,
            room_id=room_id,
            after_seq=after,
            limit=selectors.clean_limit(limit, default=selectors.HISTORY_MAX_LIMIT),
            via="api",
            ip=client_ip(request),
        )
    else:
        page = reading.read_history(
            user=request.user,
            room_id=room_id,
            before_seq=before,
            limit=limit,
            via="api",
            ip=client_ip(request),
        )
    return JsonResponse(payloads.message_page_payload(page))


def _send(request: HttpRequest, room_id: int) -> HttpResponse:
    draft = schemas.parse(schemas.MessageDraft, parse_json(request))
    result = messaging.send_message(
        sender=request.user,
        room_id=room_id,
        client_id=draft.client_id,
        body=draft.body,
        **messaging.draft_options(draft.model_dump()),
    )
    payload = payloads.message_payload(result.message)
    return JsonResponse({"message": payload}, status=201 if result.created else 200)


@api_endpoint("GET", "POST")
@limit_requests("message.post", methods=["POST"])
def room_messages(request: HttpRequest, room_id: int) -> HttpResponse:
    """GET: a page of messages (``before``/``after``/``limit``). POST: send one."""
    if request.method == "POST":
        return _send(request, room_id)
    return _list_messages(request, room_id)


@api_endpoint("POST")
def room_read(request: HttpRequest, room_id: int) -> HttpResponse:
    """Move the reader's marker: ``{"seq": N}`` → ``{"room": id, "seq": stored}``."""
    position = schemas.parse(schemas.ReadPosition, parse_json(request))
    stored = messaging.mark_read(user=request.user, room_id=room_id, seq=position.seq)
    return JsonResponse({"room": room_id, "seq": stored})


@api_endpoint("GET")
def unread(request: HttpRequest) -> HttpResponse:
    """Unread messages per room the reader belongs to."""
    counts = selectors.unread_counts(user=request.user)
    return JsonResponse(payloads.unread_payload(counts))
