"""Auditors' search of an exercise's messages: a bounded scan, since text is encrypted at rest."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext

from liaison import access, audit
from liaison.audit.transcripts import iter_transcript
from liaison.errors import Invalid
from liaison.models import Exercise, Room, User

SEARCH_MAX_ROOMS = 100
SEARCH_MAX_MESSAGES = 20_000
SEARCH_MAX_RESULTS = 100
QUERY_MIN_CHARS = 2
QUERY_MAX_CHARS = 200
SNIPPET_CHARS = 80


@dataclass
class SearchResult:
    exercise: Exercise
    query: str
    hits: list[dict[str, Any]] = field(default_factory=list)
    rooms_scanned: int = 0
    messages_scanned: int = 0
    stopped: str = ""  # why the scan stopped early, if it did


def _snippet(text: str, position: int, length: int) -> dict[str, str]:
    start = max(position - SNIPPET_CHARS, 0)
    end = min(position + length + SNIPPET_CHARS, len(text))
    return {
        "before": ("…" if start > 0 else "") + text[start:position],
        "match": text[position : position + length],
        "after": text[position + length : end] + ("…" if end < len(text) else ""),
    }


def _match(entry: dict[str, Any], needle: str) -> tuple[str, dict[str, str]] | None:
    versions = [(gettext("original"), entry["body"])]
    versions += [
        (gettext("revision %(number)s") % {"number": r["number"]}, r["body"])
        for r in entry["revisions"]
    ]
    for label, text in versions:
        if not text:
            continue
        position = text.casefold().find(needle)
        if position >= 0 and len(text.casefold()) == len(text):
            return label, _snippet(text, position, len(needle))
        if position >= 0:  # case folding changed the length: show the start of the text
            return label, _snippet(text, 0, 0)
    return None


def search_messages(
    *,
    auditor: User,
    exercise_id: object,
    query: str,
    ip: str | None = None,
    max_rooms: int = SEARCH_MAX_ROOMS,
    max_messages: int = SEARCH_MAX_MESSAGES,
    max_results: int = SEARCH_MAX_RESULTS,
) -> SearchResult:
    """Find text in an exercise's messages, every version of them, decrypting as it streams.

    Bounded (rooms and messages scanned, results kept): text is encrypted at rest, so there is
    no index to ask, and one search must not hold a worker for long. The audit event keeps the
    query's SHA-256 and length, not the text, which may itself be sensitive.
    """
    access.require_auditor(auditor)
    exercise, _ = access.access_exercise(auditor, exercise_id)
    text = (query or "").strip()
    if len(text) < QUERY_MIN_CHARS:
        raise Invalid(
            gettext("Search for at least %(query_min_chars)s characters.")
            % {"query_min_chars": QUERY_MIN_CHARS},
            field="q",
        )
    if len(text) > QUERY_MAX_CHARS:
        raise Invalid(
            gettext("Search for at most %(query_max_chars)s characters.")
            % {"query_max_chars": QUERY_MAX_CHARS},
            field="q",
        )
    needle = text.casefold()
    result = SearchResult(exercise=exercise, query=text)
    rooms = list(Room.objects.filter(exercise=exercise).order_by("pk")[: max_rooms + 1])
    if len(rooms) > max_rooms:
        rooms = rooms[:max_rooms]
        result.stopped = f"only the first {max_rooms} rooms were searched"
    for room in rooms:
        if result.stopped and result.stopped.startswith(("scanned", "found")):
            break
        result.rooms_scanned += 1
        for entry in iter_transcript(room):
            if result.messages_scanned >= max_messages:
                result.stopped = f"scanned the limit of {max_messages} messages"
                break
            result.messages_scanned += 1
            found = _match(entry, needle)
            if found is None:
                continue
            label, snippet = found
            result.hits.append({"room": room, "entry": entry, "version": label, "snippet": snippet})
            if len(result.hits) >= max_results:
                result.stopped = f"found the limit of {max_results} results"
                break
    audit.record(
        actor=auditor,
        action="audit.searched",
        target=exercise,
        exercise=exercise,
        ip=ip,
        query_sha256=hashlib.sha256(needle.encode()).hexdigest(),
        query_length=len(text),
        hits=len(result.hits),
        messages_scanned=result.messages_scanned,
        rooms_scanned=result.rooms_scanned,
        stopped=result.stopped,
    )
    return result
