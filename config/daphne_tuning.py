"""Tuning of the daphne (Twisted) HTTP server that runs this ASGI application.

Twisted's ``Request`` parses every ``multipart/form-data`` POST body into ``request.args``
with the e-mail parser before daphne hands the request on: it reads the whole body into memory
and then uses about ten times its size more (a 100 MiB attachment cost 1.3 GiB of resident
memory and ran at 3 MB/s). Daphne never reads ``request.args``; Django parses the body itself,
streaming. Twisted's documented ``parsePOSTFormSubmission=False`` turns that parsing off.
"""

from __future__ import annotations

import functools
import inspect


def disable_twisted_form_parsing() -> bool:
    """Make daphne's requests skip Twisted's form parsing. Idempotent; ``False`` when daphne
    is not installed or Twisted predates the switch (nothing to do then)."""
    try:
        from daphne.http_protocol import WebRequest
        from twisted.web.http import Request
    except ImportError:
        return False
    if getattr(WebRequest, "_liaison_form_parsing_off", False):
        return True
    if "parsePOSTFormSubmission" not in inspect.signature(Request.__init__).parameters:
        return False
    original = WebRequest.__init__

    @functools.wraps(original)
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("parsePOSTFormSubmission", False)
        original(self, *args, **kwargs)

    WebRequest.__init__ = __init__
    WebRequest._liaison_form_parsing_off = True
    return True
