"""Which language a reader gets: their saved choice, then the language cookie (a choice made
before signing in), then the browser's Accept-Language, then English. Pages apply it in
``UserLanguageMiddleware``, the room socket at connect."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils import translation
from django.utils.translation import trans_real


def saved_language(user: object) -> str:
    """The signed-in user's saved interface language, or "" when they chose none."""
    if user is None or not getattr(user, "is_authenticated", False):
        return ""
    language = getattr(user, "language", "") or ""
    return language if language in dict(settings.LANGUAGES) else ""


def socket_language(user: object, scope: dict[str, Any]) -> str:
    """A WebSocket's language, in the same order as a page's (error frames speak it)."""
    saved = saved_language(user)
    if saved:
        return saved
    cookie = (scope.get("cookies") or {}).get(settings.LANGUAGE_COOKIE_NAME)
    headers = dict(scope.get("headers") or [])
    accept = headers.get(b"accept-language", b"").decode("latin-1")
    wanted = [cookie] if cookie else []
    wanted += [code for code, _quality in trans_real.parse_accept_lang_header(accept)]
    for code in wanted:
        if code == "*":
            break
        try:
            return translation.get_supported_language_variant(code)
        except LookupError:
            continue
    return settings.LANGUAGE_CODE
