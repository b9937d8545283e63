"""Pages in real Chromium at a given size and language, for the layout and accessibility
journeys: a signed-in browser context (a verified session cookie), the reader's saved language,
a room with a conversation in it, screenshots written to a git-ignored folder, and axe-core.

``open_page`` waits for the room's socket when the page is a room, so what is measured or
photographed is the page an officer actually works with.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from liaison.models import Room, User
from liaison.services import messaging
from tests.conftest import LiveServer, sign_in

TIMEOUT_MS = 15_000
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
LANGUAGES = ("en", "zh-hans")
# Written by the browser journeys, never committed (var/ is git-ignored); the best of them are
# copied by hand to docs/screenshots/ for the README.
SCREENSHOTS = Path(
    os.environ.get(
        "LIAISON_SCREENSHOT_DIR", Path(__file__).resolve().parent.parent / "var" / "screenshots"
    )
)


@dataclass(frozen=True)
class Viewport:
    name: str
    size: dict[str, int]


VIEWPORTS = (Viewport("phone", PHONE), Viewport("desktop", DESKTOP))


def speaks(user: User, language: str) -> User:
    """Save ``language`` as ``user``'s interface language (the first thing a page follows)."""
    user.language = language
    user.save(update_fields=["language"])
    return user


def converse(room: Room, *pairs: tuple[User, str]) -> None:
    """Messages in ``room``, in order, each from its sender, through the messaging service."""
    for number, (sender, body) in enumerate(pairs, start=1):
        messaging.send_message(
            sender=sender, room_id=room.pk, client_id=f"scene-{room.pk}-{number}", body=body
        )


def open_page(
    browser: Any,
    server: LiveServer,
    user: User | None,
    path: str,
    *,
    size: dict[str, int] = PHONE,
    time_zone: str = "Europe/London",
    bypass_csp: bool = False,
    language: str | None = None,
) -> tuple[Any, Any]:
    """A browser context of ``size``, signed in as ``user`` (or anonymous), on ``path``; the
    browser asks for ``language`` (else the user's saved one) in Accept-Language.

    ``bypass_csp`` is for the accessibility journeys only: axe-core is injected as an inline
    script, which the page's own policy rightly refuses."""
    from playwright.sync_api import expect

    language = language or (user.language if user is not None else "") or "en"
    context = browser.new_context(
        base_url=server.url,
        viewport=size,
        timezone_id=time_zone,
        locale="zh-CN" if language == "zh-hans" else "en-GB",
        bypass_csp=bypass_csp,
        has_touch=size["width"] < 700,
        device_scale_factor=1,
    )
    context.set_default_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)
    if user is not None:
        client = sign_in(Client(), user)
        context.add_cookies(
            [
                {
                    "name": settings.SESSION_COOKIE_NAME,
                    "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                    "url": server.url,
                }
            ]
        )
    page = context.new_page()
    problems: list[str] = []

    def console(entry: Any) -> None:
        if entry.type == "error" and not entry.text.startswith("Failed to load resource"):
            problems.append(entry.text)

    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", console)
    page.problems = problems  # type: ignore[attr-defined]
    page.goto(path)
    if page.locator("#chat").count():
        expect(page.locator("#chat-status")).to_have_attribute("data-state", "online")
    return context, page


def sideways_overflow(page: Any) -> list[str]:
    """What makes the page wider than its viewport: the document's width if it is, and the
    elements whose right edge passes the viewport (empty when nothing scrolls sideways)."""
    return page.evaluate(
        """() => {
          const width = document.documentElement.clientWidth;
          const found = [];
          // Inside something that scrolls or clips sideways (a wide table), not the page's concern.
          const clipped = (node) => {
            for (let up = node.parentElement; up && up !== document.body; up = up.parentElement) {
              if (getComputedStyle(up).overflowX !== "visible") return true;
            }
            return false;
          };
          if (document.documentElement.scrollWidth > width) {
            found.push(`document ${document.documentElement.scrollWidth} > ${width}`);
          }
          for (const node of document.body.querySelectorAll("*")) {
            const box = node.getBoundingClientRect();
            const style = getComputedStyle(node);
            if (box.width === 0 || style.visibility === "hidden" || style.position === "fixed") {
              continue;
            }
            if (node.closest("[hidden], .visually-hidden")) continue;
            if (clipped(node)) continue;
            if (box.right > width + 0.5) {
              const name = node.id ? `#${node.id}` : `${node.tagName.toLowerCase()}.${node.className}`;
              found.push(`${name} right=${Math.round(box.right)}`);
            }
          }
          return found.slice(0, 12);
        }"""
    )


def small_targets(page: Any, selector: str, *, minimum: int = 44) -> list[str]:
    """The visible controls matching ``selector`` smaller than ``minimum`` CSS pixels either
    way (a fingertip's size)."""
    return page.locator(selector).evaluate_all(
        """(nodes, minimum) => nodes
          .filter((node) => node.getClientRects().length && getComputedStyle(node).visibility !== "hidden")
          .map((node) => [node, node.getBoundingClientRect()])
          .filter(([, box]) => box.width + 0.5 < minimum || box.height + 0.5 < minimum)
          .map(([node, box]) =>
            `${node.tagName.toLowerCase()} "${(node.getAttribute("aria-label") || node.textContent).trim().slice(0, 30)}" ${Math.round(box.width)}x${Math.round(box.height)}`)""",
        minimum,
    )


def screenshot(page: Any, name: str) -> Path:
    """Write ``name``.png of the page as it is now to the screenshot folder."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), animations="disabled", caret="hide")
    return path


@functools.cache
def axe_source() -> str:
    """axe-core's browser build: from npm's ``axe-core`` when node_modules has it, else the copy
    that the ``axe-playwright-python`` wheel ships (a pinned dev requirement)."""
    npm = Path(__file__).resolve().parent.parent / "node_modules" / "axe-core" / "axe.min.js"
    if npm.exists():
        return npm.read_text(encoding="utf-8")
    try:
        import axe_playwright_python
    except ImportError:  # pragma: no cover - a venv built from an older lock
        pytest.fail("axe-core is missing: install requirements-dev.lock (axe-playwright-python)")
    bundled = Path(axe_playwright_python.__file__).resolve().parent / "axe.min.js"
    return bundled.read_text(encoding="utf-8")


def axe_violations(page: Any, *, impacts: tuple[str, ...] = ("serious", "critical")) -> list[str]:
    """axe-core's WCAG 2.x A/AA (and best-practice) violations of ``impacts`` on the page as it
    is now, one line each: rule, impact, and the first offending elements."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(content=axe_source())
    result = page.evaluate(
        """async () => {
          const report = await axe.run(document, {
            runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"] },
            resultTypes: ["violations"],
          });
          return report.violations.map((v) => ({
            id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 4).map((n) => `${n.target.join(" ")}: ${n.failureSummary.split("\\n").slice(1, 2).join("")}`),
          }));
        }"""
    )
    return [
        f"{item['id']} ({item['impact']}): {item['help']} -> {item['nodes']}"
        for item in result
        if item["impact"] in impacts
    ]
