"""The data exchange through a real daphne server in real headless Chromium: Olivia (London)
uploads Felixstowe's exports, Li Wei (Guangzhou) uploads Nansha's imports and China's
prohibited list and runs the comparison, and both see its summary appear in the room they have
open; then Li Wei reports a seizure and Olivia sees the card arrive."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from liaison.models import Comparison, Dataset, Room, User
from tests import exchange_support as support
from tests.conftest import LiveServer
from tests.exchange_support import SAMPLE

store = support.store
pytestmark = [
    pytest.mark.browser,
    pytest.mark.live_server,
    pytest.mark.django_db(transaction=True),
]


def upload(page: Any, exercise_id: int, kind: str, path: Path) -> None:
    """Upload a file through the data exchange page's form, and wait for its report."""
    from playwright.sync_api import expect

    page.goto(f"/exercises/{exercise_id}/data/")
    page.select_option("#exchange-kind", kind)
    page.set_input_files("#exchange-file", str(path))
    page.get_by_role("button", name="Upload and check").click()
    expect(page.locator("#report .badge.accepted")).to_be_visible()


def test_two_sides_compare_their_declarations_and_both_see_the_summary_in_the_room(
    browser: Any,
    asgi_server: LiveServer,
    uk_officer: User,
    gz_officer: User,
    room: Room,
) -> None:
    from playwright.sync_api import expect

    from tests.test_browser_chat import open_room

    london, olivia_room = open_room(browser, asgi_server, uk_officer, room)
    guangzhou, li_wei_room = open_room(browser, asgi_server, gz_officer, room)
    # The room's header leads to the exercise's data.
    expect(olivia_room.get_by_role("link", name="Data exchange")).to_have_attribute(
        "href", f"/exercises/{room.exercise_id}/data/"
    )
    olivia = london.new_page()
    li_wei = guangzhou.new_page()

    upload(olivia, room.exercise_id, "export_declarations", SAMPLE / "exports_felixstowe.csv")
    upload(li_wei, room.exercise_id, "import_declarations", SAMPLE / "imports_nansha.csv")
    upload(li_wei, room.exercise_id, "prohibited_list", SAMPLE / "prohibited_cn.csv")
    li_wei.goto(f"/exercises/{room.exercise_id}/data/")
    prohibited = Dataset.objects.get(kind="prohibited_list")
    li_wei.select_option("#mirror-prohibited", str(prohibited.pk))
    li_wei.get_by_role("button", name="Run the mirror comparison").click()

    expect(li_wei.locator(".exchange-counts")).to_contain_text("77 matched")
    expect(li_wei.locator(".exchange-counts")).to_contain_text("30 prohibited-list hits")
    comparison = Comparison.objects.get()
    summary = f"Mirror comparison #{comparison.pk}: 77 matched, 18 weight mismatch"
    for page in (olivia_room, li_wei_room):
        line = page.locator("#chat-messages > li.msg.kind-system .msg-body")
        expect(line).to_contain_text(summary)
        expect(line).to_contain_text("镜像比对")
    # Olivia follows the room's message to the result, side by side.
    olivia.goto(f"/comparisons/{comparison.pk}/?outcome=export_only")
    expect(olivia.locator("tr.outcome-export_only")).to_have_count(9)
    for page in (olivia_room, li_wei_room):
        assert page.problems == []  # type: ignore[attr-defined]


def test_a_seizure_report_arrives_in_the_room_as_a_card(
    browser: Any,
    asgi_server: LiveServer,
    uk_officer: User,
    gz_officer: User,
    room: Room,
) -> None:
    from playwright.sync_api import expect

    from tests.test_browser_chat import open_room

    _london, olivia_room = open_room(browser, asgi_server, uk_officer, room)
    _guangzhou, li_wei_room = open_room(browser, asgi_server, gz_officer, room)

    li_wei_room.get_by_role("link", name="Post a seizure report").click()
    li_wei_room.fill("#report-date", "2026-11-12")
    li_wei_room.fill("#report-place", "Nansha port, berth 3")
    li_wei_room.fill("#report-container", "CMAU3350033")
    li_wei_room.fill("#report-hs", "391590")
    li_wei_room.fill("#report-commodity", "Mixed plastic waste")
    li_wei_room.fill("#report-quantity", "21.5")
    li_wei_room.select_option("#report-unit", "t")
    li_wei_room.fill("#report-concealment", "Under clean flakes")
    li_wei_room.fill("#report-agencies", "GACC, HMRC")
    li_wei_room.get_by_role("button", name="Post the report").click()

    card = olivia_room.locator("#chat-messages > li.msg.kind-report .report-card")
    expect(card).to_be_visible()
    expect(card.locator(".report-place")).to_have_text("Nansha port, berth 3")
    expect(card.locator(".report-container_no")).to_have_text("CMAU3350033")
    expect(card.locator(".report-quantity")).to_have_text("21.5 t")
    expect(card.locator(".report-agencies")).to_have_text("GACC, HMRC")
    # Back in the room, Li Wei sees the same card.
    expect(li_wei_room.locator("li.msg.kind-report .report-card")).to_be_visible()
    assert olivia_room.problems == []  # type: ignore[attr-defined]
