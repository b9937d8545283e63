"""Running the chat client's ES modules in real headless Chromium without a build step: a small
static server hands out ``static/`` under the site's own Content-Security-Policy, and ``run``
evaluates a script that imports the modules in an empty page of it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from django.conf import settings

STATIC = Path(__file__).resolve().parent.parent / "static"
CHAT = STATIC / "liaison" / "chat"
TIMEOUT_MS = 15_000


def site_policy() -> str:
    """The Content-Security-Policy the site sends, so the modules are tried under it."""
    directives = settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


class StaticFiles(SimpleHTTPRequestHandler):
    """``/`` is an empty page; ``/static/...`` comes from the repository's static folder."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, directory=str(STATIC), **kwargs)

    def do_GET(self) -> None:
        if self.path == "/":
            page = b'<!doctype html><html lang="en"><head><title>modules</title></head></html>'
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)
        elif self.path.startswith("/static/"):
            self.path = self.path.removeprefix("/static")
            super().do_GET()
        else:
            self.send_error(404)

    def end_headers(self) -> None:
        self.send_header("Content-Security-Policy", site_policy())
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def guess_type(self, path: Any) -> str:
        if str(path).endswith(".js"):
            return "text/javascript"
        return super().guess_type(path)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serving_static() -> Iterator[str]:
    """The static server's base URL while it runs."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), StaticFiles)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def empty_page(browser: Any, base_url: str) -> Iterator[Any]:
    """An empty page of the static server; any script error or CSP refusal fails the test."""
    context = browser.new_context(base_url=base_url, timezone_id="UTC", locale="en-GB")
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda error: problems.append(str(error)))

    def console(entry: Any) -> None:
        # Script errors and CSP refusals count; a missing favicon does not.
        if entry.type == "error" and not entry.text.startswith("Failed to load resource"):
            problems.append(entry.text)

    tab.on("console", console)
    tab.goto("/")
    try:
        yield tab
    finally:
        context.close()
    assert problems == []


def run(page: Any, script: str, arg: Any = None) -> Any:
    """Runs ``script`` as the body of an async function of ``arg`` in the page; ``chat(name)``
    imports /static/liaison/chat/<name>.js."""
    return page.evaluate(
        "async (arg) => {\n"
        "const chat = (name) => import(`/static/liaison/chat/${name}.js`);\n"
        f"{script}\n}}",
        arg,
    )
