"""Internationalisation: the Simplified Chinese catalogue is complete, compiles, covers every
string the code marks for translation, and a Chinese reader sees no English interface sentence
on any page (message bodies, proper names and the product name excepted). Dates follow the
reader's language with a 24-hour clock."""

from __future__ import annotations

import ast
import datetime as dt
import html
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import polib
import pytest
from django.conf import settings
from django.template.loader import render_to_string
from django.test import Client
from django.utils import timezone, translation
from django.utils.translation.template import templatize

from liaison.management.commands.compilecatalogues import catalogues, compile_catalogue
from liaison.models import Exercise, Room, User
from liaison.services import invitations as invitation_service
from liaison.services import messaging
from tests.conftest import sign_in
from tests.security_support import password_step

ROOT = Path(__file__).resolve().parent.parent
LOCALE = ROOT / "liaison" / "locale"
TEMPLATES = ROOT / "liaison" / "templates"
ZH_DJANGO = LOCALE / "zh_Hans" / "LC_MESSAGES" / "django.po"
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|%[sd]")
# Python files whose strings are not shown to officers (operator tools, benchmarks).
NOT_TRANSLATED = ("liaison/management/", "liaison/migrations/")


def zh_catalogues() -> list[Path]:
    return sorted((LOCALE / "zh_Hans" / "LC_MESSAGES").glob("*.po"))


def load(path: Path) -> polib.POFile:
    return polib.pofile(str(path))


# --- (1) the catalogue ---------------------------------------------------------------------------


def test_there_is_a_simplified_chinese_catalogue_for_the_server_and_the_chat_client() -> None:
    names = {path.name for path in zh_catalogues()}

    assert "django.po" in names
    assert "djangojs.po" in names
    assert settings.LOCALE_PATHS
    assert Path(settings.LOCALE_PATHS[0]) == LOCALE
    assert [code for code, _name in settings.LANGUAGES] == ["en", "zh-hans"]


@pytest.mark.parametrize("po_path", zh_catalogues(), ids=lambda path: path.name)
def test_every_zh_hans_entry_is_translated_not_empty_and_not_fuzzy(po_path: Path) -> None:
    catalogue = load(po_path)
    problems = []
    for entry in catalogue:
        if entry.obsolete:
            continue
        if "fuzzy" in entry.flags:
            problems.append(f"fuzzy: {entry.msgid!r}")
        texts = list(entry.msgstr_plural.values()) if entry.msgid_plural else [entry.msgstr]
        if not texts or any(not text.strip() for text in texts):
            problems.append(f"untranslated: {entry.msgid!r}")
            continue
        wanted = set(PLACEHOLDER.findall(entry.msgid_plural or entry.msgid))
        for text in texts:
            if set(PLACEHOLDER.findall(text)) != wanted:
                problems.append(f"placeholders differ: {entry.msgid!r} -> {text!r}")
    assert catalogue.metadata.get("Plural-Forms", "").startswith("nplurals=1")
    assert problems == []
    assert catalogue.percent_translated() == 100


@pytest.mark.parametrize("po_path", zh_catalogues(), ids=lambda path: path.name)
def test_the_catalogue_compiles_and_django_reads_it(po_path: Path, tmp_path: Path) -> None:
    copy = tmp_path / po_path.name
    copy.write_bytes(po_path.read_bytes())

    mo_path = compile_catalogue(copy)

    compiled = polib.mofile(str(mo_path))
    assert len(compiled) == len(load(po_path).translated_entries())
    assert po_path in catalogues()


def test_django_speaks_chinese_with_the_compiled_catalogue() -> None:
    with translation.override("zh-hans"):
        assert translation.gettext("My exercises") == "我的专项行动"
        assert translation.gettext("Coordinator") == "协调员"
        assert translation.gettext("Auditor") == "审计员"
    with translation.override("en"):
        assert translation.gettext("My exercises") == "My exercises"


def python_msgids(path: Path) -> set[str]:
    """Literal msgids of gettext calls in one Python file."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    names = {"_", "gettext", "gettext_lazy", "ngettext", "ngettext_lazy"}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
            continue
        if node.func.id not in names:
            continue
        plural = node.func.id.startswith("ngettext")
        for arg in node.args[: 2 if plural else 1]:
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.add(arg.value)
    return found


TEMPLATE_CALL = re.compile(r"\b(n?gettext)\(((?:u'(?:[^'\\]|\\.)*'(?:, )?)+)")


def template_msgids(path: Path) -> set[str]:
    """Msgids of {% translate %} and {% blocktranslate %}, as makemessages extracts them."""
    found: set[str] = set()
    for match in TEMPLATE_CALL.finditer(templatize(path.read_text(), origin=str(path))):
        for literal in re.findall(r"u'(?:[^'\\]|\\.)*'", match.group(2)):
            found.add(ast.literal_eval(literal[1:]))
    return found


def test_every_string_marked_in_the_code_is_in_the_catalogue() -> None:
    translated = {entry.msgid for entry in load(ZH_DJANGO) if entry.translated()}
    translated |= {entry.msgid_plural for entry in load(ZH_DJANGO) if entry.msgid_plural}
    missing: dict[str, set[str]] = {}
    for path in sorted((ROOT / "liaison").rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if relative.startswith(NOT_TRANSLATED):
            continue
        absent = python_msgids(path) - translated
        if absent:
            missing[relative] = absent
    for path in sorted(TEMPLATES.rglob("*.html")):
        absent = template_msgids(path) - translated
        if absent:
            missing[path.relative_to(ROOT).as_posix()] = absent
    assert missing == {}, "run makemessages -l zh_Hans and translate the new entries"


JS_CALL = re.compile(r"""\b(n?gettext)\(\s*((?:"(?:[^"\\]|\\.)*"\s*,?\s*)+)""")


def test_every_chat_client_string_is_in_the_javascript_catalogue() -> None:
    catalogue = load(LOCALE / "zh_Hans" / "LC_MESSAGES" / "djangojs.po")
    translated = {entry.msgid for entry in catalogue if entry.translated()}
    translated |= {entry.msgid_plural for entry in catalogue if entry.msgid_plural}
    marked: set[str] = set()
    for path in sorted((ROOT / "static" / "liaison" / "chat").glob("*.js")):
        for match in JS_CALL.finditer(path.read_text()):
            for literal in re.findall(r'"(?:[^"\\]|\\.)*"', match.group(2)):
                marked.add(ast.literal_eval(literal))
    assert len(marked) > 50
    assert marked - translated == set()


def test_the_chat_client_gets_its_translations_from_a_script_file(
    gz_officer: User, room: Room
) -> None:
    client = sign_in(Client(), chinese(gz_officer))

    page = client.get(f"/rooms/{room.pk}/").content.decode()
    catalogue = client.get("/jsi18n/")

    # A classic script before the chat modules (which run deferred), never inline (CSP).
    assert page.index('<script src="/jsi18n/">') < page.index("liaison/chat/main.js")
    assert 'data-language="zh-hans"' in page
    assert catalogue.status_code == 200
    assert catalogue["Content-Type"].startswith("text/javascript")
    text = catalogue.content.decode()
    # The catalogue is JSON inside the script: non-ASCII text arrives as \\u escapes.
    assert json.dumps("正在连接")[1:-1] in text
    assert json.dumps("专项行动已结束")[1:-1] in text


def test_every_template_loads_i18n() -> None:
    without = [
        path.relative_to(TEMPLATES).as_posix()
        for path in sorted(TEMPLATES.rglob("*.html"))
        if not re.search(r"{%\s*load\s[^%]*\bi18n\b", path.read_text())
    ]

    assert without == []


# --- (2) no English interface sentence on a Chinese page -----------------------------------------


def english_fragments() -> dict[str, str]:
    """Every English run of words from the catalogue's msgids (placeholders and markup cut
    out), mapped to the msgid it came from. Runs that are code, examples or names stay out."""
    fragments: dict[str, str] = {}
    for entry in load(ZH_DJANGO):
        for source in filter(None, [entry.msgid, entry.msgid_plural]):
            text = re.sub(r"<[^>]+>", " ", source)
            for piece in PLACEHOLDER.split(text):
                piece = piece.strip(" .,:;()·—–←→“”'\"#")
                words = re.findall(r"[A-Za-z][A-Za-z'-]+", piece)
                if not words or piece in ALLOWED_ENGLISH:
                    continue
                if len(words) >= 2 or (len(words) == 1 and len(words[0]) >= 4):
                    if words == [piece] and piece in SINGLE_WORDS_IN_DATA:
                        continue
                    fragments[piece] = source
    return fragments


# Words that stay Latin in the Chinese interface: product, protocols, formats, field names.
ALLOWED_ENGLISH = {
    "Liaison",
    "UTC",
    "JSON",
    "ZIP",
    "PDF",
    "CSV",
    "XLSX",
    "DOCX",
    "WebP",
    "PNG",
    "JPEG",
    "GIF",
    "Windows",
    "Linux",
    "macOS",
    "Java",
    "Android",
    "WebAssembly",
    "FreeOTP",
    "Google Authenticator",
    "Microsoft Authenticator",
    "1Password",
    "python manage.py demo",
    "python manage.py demo --otp",
    "python manage.py demo --otp EMAIL",
    "general",
    "text",
    "alert",
    "otp",
    "body",
    "kind",
    "limit",
    "seq",
    "reply_to",
    "client_id",
    "attachments",
    "send_email",
    "file",
    "multipart/form-data",
    "X-CSRFToken",
    "csrf_token",
    "GET /api/v1/session",
    "POST /api/v1/session",
    "London",
    "Shanghai",
    "Europe/London",
    "Asia/Shanghai",
}
# Single words that are also data in the pages under test (titles, names, room names).
SINGLE_WORDS_IN_DATA = {"General", "Text", "System"}


class VisibleText(HTMLParser):
    """What a reader sees or hears: text outside script/style, and the attributes a browser
    shows or reads out. <code> holds literal data (audit actions and details, hashes, commands),
    never an interface sentence."""

    SHOWN_ATTRIBUTES = ("aria-label", "placeholder", "title", "alt", "value")

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "code"):
            self._skip += 1
        names = dict(attrs)
        for name in self.SHOWN_ATTRIBUTES:
            if name == "value" and names.get("type") not in ("submit", "button"):
                continue
            if names.get(name):
                self.parts.append(str(names[name]))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "code") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def visible_text(content: str) -> str:
    parser = VisibleText()
    parser.feed(content)
    parser.close()
    return html.unescape(" ".join(" ".join(parser.parts).split()))


def english_in(text: str, data: set[str]) -> list[str]:
    """English interface fragments in a page's visible text, after removing the page's data
    (message bodies, names, titles) so they cannot hide or fake a hit."""
    for value in sorted(data, key=len, reverse=True):
        text = text.replace(value, " ")
    found = []
    for fragment in english_fragments():
        if re.search(r"(?<![A-Za-z])" + re.escape(fragment) + r"(?![A-Za-z])", text):
            found.append(fragment)
    return found


def chinese(user: User) -> User:
    user.language = "zh-hans"
    user.save(update_fields=["language"])
    return user


@pytest.fixture
def story(
    admin: User,
    auditor: User,
    uk_officer: User,
    uk_coordinator: User,
    gz_officer: User,
    gz_observer: User,
    exercise: Exercise,
    room: Room,
    hmrc: Any,
) -> dict[str, Any]:
    """An active exercise with messages, an edit, a deletion and a pending invitation."""
    Exercise.objects.filter(pk=exercise.pk).update(status="active")
    exercise.refresh_from_db()
    first = messaging.send_message(
        sender=uk_officer, room_id=room.pk, client_id="c-1", body="Container MSKU1234565 cleared."
    )
    messaging.send_message(
        sender=gz_officer, room_id=room.pk, client_id="c-2", body="收到，南沙已布控。"
    )
    messaging.edit_message(
        user=uk_officer, room_id=room.pk, seq=first.message.seq, body="MSKU1234565 held."
    )
    invitation = invitation_service.create_invitation(
        actor=admin, exercise=exercise, email="new.officer@hmrc.example", agency=hmrc
    )
    for person in (admin, auditor, uk_officer, uk_coordinator, gz_officer, gz_observer):
        chinese(person)
    return {"exercise": exercise, "room": room, "invitation": invitation}


DATA = {
    "Solid waste CFE",
    "CFE-TEST-WASTE",
    "General",
    "general",
    "Container MSKU1234565 cleared.",
    "MSKU1234565 held.",
    "HM Revenue & Customs",
    "UK Border Force",
    "GACC Guangzhou Customs",
    "Alex Admin",
    "Avery Auditor",
    "Olivia Hughes",
    "James Carter",
    "Li Wei",
    "Chen Jing",
    "Liaison",
}


def pages_for(story: dict[str, Any]) -> dict[str, list[str]]:
    exercise = story["exercise"]
    room = story["room"]
    return {
        "gz_officer": [
            "/",
            f"/rooms/{room.pk}/",
            "/account/profile/",
            "/account/security/",
            "/no-such-page/",
        ],
        "gz_observer": [f"/rooms/{room.pk}/"],
        "uk_coordinator": ["/manage/", f"/manage/exercises/{exercise.pk}/"],
        "admin": [
            "/",
            "/manage/",
            "/manage/exercises/new/",
            f"/manage/exercises/{exercise.pk}/",
            f"/manage/exercises/{exercise.pk}/edit/",
            f"/rooms/{room.pk}/",
        ],
        "auditor": [
            "/",
            "/audit/",
            "/audit/trail/",
            "/audit/verify/",
            f"/audit/exercises/{exercise.pk}/",
            f"/audit/exercises/{exercise.pk}/search/?q=MSKU",
            f"/audit/rooms/{room.pk}/",
            f"/rooms/{room.pk}/",
        ],
    }


def test_every_page_is_chinese_for_every_role(request: pytest.FixtureRequest, story) -> None:
    seen_templates: set[str] = set()
    leaks: dict[str, list[str]] = {}
    for role, urls in pages_for(story).items():
        client = sign_in(Client(), request.getfixturevalue(role))
        for url in urls:
            response = client.get(url, HTTP_ACCEPT_LANGUAGE="en-GB,en;q=0.9", follow=True)
            assert response.status_code in (200, 403, 404), (role, url, response.status_code)
            seen_templates |= {t.name for t in response.templates if t.name}
            content = response.content.decode()
            assert '<html lang="zh-hans">' in content, (role, url)
            found = english_in(visible_text(content), DATA)
            if found:
                leaks[f"{role} {url}"] = found
    assert leaks == {}, "\n".join(f"{page}: {found}" for page, found in leaks.items())
    assert "liaison/room.html" in seen_templates


def test_forms_errors_and_one_time_pages_are_chinese(
    admin: User, auditor: User, gz_officer: User, story, password: str
) -> None:
    exercise = story["exercise"]
    leaks: dict[str, list[str]] = {}

    def check(name: str, response: Any) -> None:
        found = english_in(visible_text(response.content.decode()), DATA)
        if found:
            leaks[name] = found

    client = sign_in(Client(), admin)
    check(
        "invitation created",
        client.post(
            f"/manage/exercises/{exercise.pk}/invitations/",
            {"email": "wang.fang@gz.example", "agency": gz_officer.agency_id, "role": "member"},
        ),
    )
    check("exercise form errors", client.post("/manage/exercises/new/", {"code": "x"}))
    check("verify report", sign_in(Client(), auditor).post("/audit/verify/"))
    check(
        "profile errors",
        sign_in(Client(), gz_officer).post(
            "/account/profile/", {"display_name": "", "time_zone": "Mars/Base", "language": ""}
        ),
    )
    anonymous = Client()
    anonymous.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    check("login", anonymous.get("/login/"))
    check("login error", anonymous.post("/login/", {"username": "x@y.example", "password": "z"}))
    check("invitation not valid", anonymous.get("/invite/not-a-real-token-xxxxxxxxxxxxxxxxxx/"))
    issued = invitation_service.create_invitation(
        actor=admin, exercise=exercise, email="zhang.min@gz.example", agency=gz_officer.agency
    )
    check("new officer", anonymous.get(f"/invite/{issued.token}/"))
    second = Client()
    second.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    from tests.security_support import authenticator

    authenticator(gz_officer)
    password_step(second, gz_officer, password)
    check("second factor", second.get("/login/otp/"))
    assert leaks == {}, "\n".join(f"{page}: {found}" for page, found in leaks.items())


def test_templates_no_page_reaches_render_in_chinese_too() -> None:
    with translation.override("zh-hans"):
        codes = render_to_string(
            "liaison/security/recovery_codes.html",
            {"codes": ["abcd-efgh"], "next": "/", "fresh_enrolment": True},
        )
        auditor_verify = render_to_string(
            "liaison/audit/verify.html",
            {
                "exercise_id": 3,
                "report": {
                    "ok": False,
                    "summary": "",
                    "events_checked": 4,
                    "head_seq": 4,
                    "head_hash": "ab",
                    "rooms_checked": 1,
                    "messages_checked": 2,
                    "checkpoints_checked": 1,
                    "latest_checkpoint": "cp-1",
                    "elapsed_seconds": 0.25,
                    "breaks": [],
                    "warnings": [],
                },
            },
        )
    assert english_in(visible_text(codes), DATA) == []
    assert english_in(visible_text(auditor_verify), DATA) == []
    assert "恢复码" in codes
    assert "已损坏" in auditor_verify


def test_api_and_socket_error_details_follow_the_readers_language(gz_officer: User) -> None:
    client = sign_in(Client(), chinese(gz_officer))

    response = client.post(
        "/api/v1/rooms/999999/messages", data="not json", content_type="application/json"
    )

    assert response.status_code in (400, 404)
    assert re.search(r"[\u4e00-\u9fff]", response.json()["error"]["detail"])


# --- dates, times and numbers ---------------------------------------------------------------------


def test_dates_are_written_the_chinese_way_with_a_24_hour_clock() -> None:
    moment = dt.datetime(2026, 11, 30, 16, 34, tzinfo=dt.UTC)
    with translation.override("zh-hans"), timezone.override("Asia/Shanghai"):
        rendered = render_to_string("liaison/manage/exercise_list.html", {"exercises": []})
        from django.template import Context, Template

        text = Template('{{ when|date:"DATETIME_FORMAT" }}|{{ when|date:"SHORT_DATE_FORMAT" }}')
        zh = text.render(Context({"when": moment}))
    with translation.override("en"), timezone.override("Europe/London"):
        en = text.render(Context({"when": moment}))

    assert zh.startswith("2026年12月1日 00:34")
    assert "十一月" not in zh
    assert "十二月" not in zh
    assert zh.endswith("|2026年12月1日")
    assert en.startswith("30 Nov 2026 16:34")
    assert "PM" not in en
    assert "p.m." not in en
    assert "专项行动" in rendered


def test_the_formats_have_no_12_hour_clock() -> None:
    from liaison.formats.en import formats as en
    from liaison.formats.zh_Hans import formats as zh

    for module in (en, zh):
        for name in ("TIME_FORMAT", "DATETIME_FORMAT", "SHORT_DATETIME_FORMAT"):
            value = getattr(module, name)
            assert "H:i" in value
            assert "P" not in value
            assert "A" not in value
            assert "g" not in value
    assert "年" in zh.DATE_FORMAT
    assert "月" in zh.DATE_FORMAT


@pytest.mark.django_db(transaction=True)
async def test_websocket_error_frames_speak_the_readers_language(
    ws_headers: Any, gz_officer: User, uk_officer: User, room: Room
) -> None:
    from channels.db import database_sync_to_async
    from channels.testing import WebsocketCommunicator

    from config.asgi import application

    await database_sync_to_async(chinese)(gz_officer)

    async def error_for(user: User, accept_language: str) -> str:
        headers = await database_sync_to_async(ws_headers)(user)
        headers.append((b"accept-language", accept_language.encode()))
        socket = WebsocketCommunicator(application, f"/ws/rooms/{room.pk}/", headers=headers)
        connected, _ = await socket.connect(timeout=5)
        assert connected
        await socket.send_to(text_data=json.dumps({"type": "message.send", "client_id": "x"}))
        while True:
            frame = json.loads((await socket.receive_output(3))["text"])
            if frame["type"] == "error":
                break
        await socket.disconnect()
        return frame["detail"]

    # The saved language wins over the browser's; without one, Accept-Language decides.
    assert await error_for(gz_officer, "en-GB,en;q=0.9") == "缺少必填字段“body”。"
    assert await error_for(uk_officer, "zh-CN,zh;q=0.9") == "缺少必填字段“body”。"
    assert await error_for(uk_officer, "en-GB") == "Field 'body' is required."
