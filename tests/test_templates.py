"""The Content-Security-Policy allows scripts and styles only from our own static files, so no
template may carry inline script, event-handler attributes, ``javascript:`` URLs or inline
styles: a test reads every template, and the rendered security pages."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from liaison.models import User
from tests.security_support import authenticator, password_step

TEMPLATES = Path(__file__).resolve().parent.parent / "liaison" / "templates"


class InlineCodeFinder(HTMLParser):
    """Collects everything a strict CSP would block in a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name.lower(): value or "" for name, value in attrs}
        if tag == "script":
            self._in_script = True
            if "src" not in names:
                self.problems.append("<script> without src")
        if tag == "style":
            self.problems.append("<style> block")
        for name, value in names.items():
            if name.startswith("on"):
                self.problems.append(f"event handler attribute {name}=")
            if name == "style":
                self.problems.append("style= attribute")
            if value.strip().lower().startswith("javascript:"):
                self.problems.append(f"javascript: URL in {name}=")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.problems.append("inline script content")


def inline_code_in(html: str) -> list[str]:
    finder = InlineCodeFinder()
    finder.feed(html)
    finder.close()
    # Belt and braces for what a parser could miss around template tags.
    if re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html, re.IGNORECASE):
        finder.problems.append("<script> without src (pattern)")
    if re.search(r"""\son[a-z]+\s*=\s*["']""", html, re.IGNORECASE):
        finder.problems.append("event handler attribute (pattern)")
    if re.search(r"javascript\s*:", html, re.IGNORECASE):
        finder.problems.append("javascript: (pattern)")
    return finder.problems


def all_templates() -> list[Path]:
    return sorted(TEMPLATES.rglob("*.html"))


def test_there_are_templates_to_check() -> None:
    names = {path.relative_to(TEMPLATES).as_posix() for path in all_templates()}
    assert {"liaison/base.html", "liaison/login.html", "liaison/security/page.html"} <= names


@pytest.mark.parametrize(
    "template", all_templates(), ids=lambda path: path.relative_to(TEMPLATES).as_posix()
)
def test_no_template_carries_inline_script_or_style(template: Path) -> None:
    assert inline_code_in(template.read_text(encoding="utf-8")) == []


def test_the_checker_catches_what_the_policy_would_block() -> None:
    assert inline_code_in("<script>alert(1)</script>")
    assert inline_code_in('<button onclick="go()">x</button>')
    assert inline_code_in('<a href="javascript:go()">x</a>')
    assert inline_code_in('<p style="color:red">x</p>')
    assert inline_code_in("<style>p{}</style>")
    assert inline_code_in('<script type="module" src="/static/liaison/chat.js"></script>') == []


@pytest.mark.django_db
def test_the_rendered_sign_in_and_security_pages_have_no_inline_code(
    client: Client, uk_officer: User, password: str, login_as: Any
) -> None:
    pages = [client.get("/login/").content.decode()]
    password_step(client, uk_officer, password)
    pages.append(client.get("/account/2fa/setup/").content.decode())
    authenticator(uk_officer)
    other = Client()
    password_step(other, uk_officer, password)
    pages.append(other.get("/login/otp/").content.decode())
    signed_in = login_as(Client(), uk_officer)
    pages.append(signed_in.get("/account/security/").content.decode())
    for html in pages:
        assert inline_code_in(html) == []


@pytest.mark.django_db
def test_the_sign_in_page_tells_developers_how_to_get_demo_codes(client: Client) -> None:
    html = client.get("/login/").content.decode()
    # Commands that work as printed in a checkout where `make run` has run.
    assert "<code>make otp EMAIL=…</code>" in html
    assert "<code>.venv/bin/python manage.py demo</code>" in html


@pytest.mark.django_db
def test_the_sign_in_page_says_nothing_of_demo_codes_in_production(
    client: Client, settings: Any
) -> None:
    settings.PRODUCTION = True
    html = client.get("/login/").content.decode()
    assert "--otp" not in html
    assert "make otp" not in html
    assert "manage.py demo" not in html
