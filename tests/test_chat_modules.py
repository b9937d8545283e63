"""The room page's client modules, imported as native ES modules in real headless Chromium.

No build step and no Node: a small static server hands out ``static/`` under the site's own
Content-Security-Policy, and each test imports a module in a page and checks its pure logic.
The outbox resends oldest first with stable client_ids, gaps in the seq are noticed and healed
without looping, only web links become links, times are in the reader's zone.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.chat_modules_support import CHAT, empty_page, run, serving_static, site_policy

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def static_server() -> Iterator[str]:
    with serving_static() as url:
        yield url


@pytest.fixture
def page(browser: Any, static_server: str) -> Iterator[Any]:
    with empty_page(browser, static_server) as tab:
        yield tab


def test_every_module_loads_under_the_sites_policy_and_the_entry_waits_for_a_room(
    page: Any,
) -> None:
    names = sorted(path.stem for path in CHAT.glob("*.js"))
    assert {"main", "socket", "outbox", "render", "uploads", "people", "strings"} <= set(names)
    assert {"bearings", "clocks"} <= set(names)

    loaded = run(
        page,
        """
        const sockets = [];
        const Original = window.WebSocket;
        window.WebSocket = function (...args) {
          sockets.push(args[0]);
          return new Original(...args);
        };
        const exports = {};
        for (const name of arg) exports[name] = Object.keys(await chat(name)).sort();
        return { exports, sockets };
        """,
        names,
    )

    assert page.goto("/").headers["content-security-policy"] == site_policy()
    # The entry exports nothing and, on a page without #chat, opens no connection.
    assert loaded["exports"]["main"] == []
    assert loaded["sockets"] == []
    assert "Outbox" in loaded["exports"]["outbox"]
    assert "SeqTracker" in loaded["exports"]["sequence"]


# --- the outbox ---------------------------------------------------------------------------------

OUTBOX_SETUP = """
const { Outbox, sendFrame, outboxKey } = await chat("outbox");
let made = 0;
const makeId = () => `client-${++made}`;
const key = outboxKey(7, 3);
sessionStorage.removeItem(key);
const outbox = new Outbox({ storage: sessionStorage, key, makeId });
"""


def test_the_outbox_sends_oldest_first_within_its_window_and_resends_with_the_same_ids(
    page: Any,
) -> None:
    result = run(
        page,
        OUTBOX_SETUP
        + """
        for (let n = 1; n <= 10; n++) outbox.add({ body: `Update ${n}` });
        const ids = (entries) => entries.map((entry) => entry.client_id);
        const first = ids(outbox.due());
        first.forEach((id) => outbox.sent(id));
        const whileFull = ids(outbox.due());
        // The server acknowledges the oldest: it leaves, the window lets the ninth go.
        outbox.remove("client-1");
        outbox.answered("client-1");
        const afterAck = ids(outbox.due());
        afterAck.forEach((id) => outbox.sent(id));
        // The connection drops: everything unacknowledged is due again, under the same ids.
        outbox.connectionLost();
        const afterDrop = ids(outbox.due());
        // A reload finds the same entries, in the same order, in sessionStorage.
        const reloaded = new Outbox({ storage: sessionStorage, key, makeId });
        return {
          key,
          first,
          whileFull,
          afterAck,
          afterDrop,
          reloaded: ids(reloaded.entries),
          reloadedDue: ids(reloaded.due()),
          frame: sendFrame(reloaded.entries[0]),
          withFiles: sendFrame({ client_id: "x", body: "", attachments: [4, 5] }),
        };
        """,
    )

    assert result["key"] == "liaison.outbox.7.3"
    assert result["first"] == [f"client-{n}" for n in range(1, 9)]
    assert result["whileFull"] == []
    assert result["afterAck"] == ["client-9"]
    assert result["afterDrop"] == [f"client-{n}" for n in range(2, 10)]
    assert result["reloaded"] == [f"client-{n}" for n in range(2, 11)]
    assert result["reloadedDue"] == [f"client-{n}" for n in range(2, 10)]
    assert result["frame"] == {"type": "message.send", "client_id": "client-2", "body": "Update 2"}
    assert result["withFiles"] == {
        "type": "message.send",
        "client_id": "x",
        "body": "",
        "attachments": [4, 5],
    }


def test_a_refused_message_waits_for_a_retry_and_an_empty_outbox_leaves_no_trace(
    page: Any,
) -> None:
    result = run(
        page,
        OUTBOX_SETUP
        + """
        const ids = (entries) => entries.map((entry) => entry.client_id);
        outbox.add({ body: "\\u0007" });
        outbox.add({ body: "Seal 884213." });
        outbox.sent("client-1");
        outbox.sent("client-2");
        outbox.answered("client-1");
        outbox.fail("client-1", "Not accepted: The message is empty.");
        outbox.connectionLost();
        const withFailure = ids(outbox.due());
        const stored = JSON.parse(sessionStorage.getItem(key));
        outbox.retry("client-1");
        const afterRetry = ids(outbox.due());
        outbox.remove("client-1");
        outbox.remove("client-2");
        return {
          withFailure,
          storedFailure: stored[0].failed,
          storedFields: Object.keys(stored[0]).sort(),
          afterRetry,
          left: sessionStorage.getItem(key),
          removedTwice: outbox.remove("client-2"),
        };
        """,
    )

    assert result["withFailure"] == ["client-2"]
    assert result["storedFailure"] == "Not accepted: The message is empty."
    assert result["storedFields"] == [
        "attachmentMeta",
        "attachments",
        "body",
        "client_id",
        "created_at",
        "failed",
    ]
    assert result["afterRetry"] == ["client-1", "client-2"]
    assert result["left"] is None
    assert result["removedTwice"] is None


def test_the_outbox_keeps_working_when_storage_is_broken_or_full(page: Any) -> None:
    result = run(
        page,
        """
        const { Outbox, newClientId } = await chat("outbox");
        const garbage = { getItem: () => "{not json", setItem() {}, removeItem() {} };
        const full = {
          getItem: () => JSON.stringify([{ client_id: "kept", body: "a" }, null, { body: "b" }]),
          setItem() { throw new DOMException("full", "QuotaExceededError"); },
          removeItem() {},
        };
        const fromGarbage = new Outbox({ storage: garbage, key: "k" });
        const fromFull = new Outbox({ storage: full, key: "k" });
        fromFull.add({ body: "c" });
        const memoryOnly = new Outbox({ key: "k" });
        memoryOnly.add({ body: "d" });
        const fallback = newClientId({ getRandomValues: (bytes) => bytes.fill(171) });
        return {
          garbage: fromGarbage.entries.length,
          full: fromFull.due().map((entry) => entry.body),
          memoryOnly: memoryOnly.due().length,
          uuid: newClientId(),
          another: newClientId(),
          fallback,
        };
        """,
    )

    assert result["garbage"] == 0
    assert result["full"] == ["a", "c"]  # entries without a client_id are dropped on load
    assert result["memoryOnly"] == 1
    assert len(result["uuid"]) == 36
    assert result["uuid"] != result["another"]
    assert result["fallback"] == "ab" * 16


# --- the seq: gaps and catching up ----------------------------------------------------------------


def test_a_live_message_that_jumps_ahead_is_a_gap_until_the_missing_one_arrives(
    page: Any,
) -> None:
    result = run(
        page,
        """
        const { SeqTracker } = await chat("sequence");
        const seqs = new SeqTracker(0);
        const steps = [];
        seqs.hold(1);
        steps.push([seqs.jumpsAhead(2), seqs.jumpsAhead(3)]);
        seqs.hold(3);
        steps.push(seqs.lastSeq);
        seqs.hold(2);
        steps.push(seqs.lastSeq);
        // The copy shown at ack time does not count as held until the record's copy arrives.
        seqs.hold(4, true);
        steps.push(seqs.lastSeq);
        seqs.hold(4, false);
        steps.push(seqs.lastSeq);
        // The page opened on the newest page of a long room: earlier messages exist.
        const page = new SeqTracker(10);
        page.hold(12);
        page.hold(11);
        return {
          steps,
          minSeq: seqs.minSeq,
          holdsStart: seqs.holdsStart(),
          hasEarlier: seqs.hasEarlier(),
          page: [page.lastSeq, page.minSeq, page.hasEarlier(), page.holdsStart()],
        };
        """,
    )

    assert result["steps"] == [[False, True], 1, 3, 3, 4]
    assert result["minSeq"] == 1
    assert result["holdsStart"] is True
    assert result["hasEarlier"] is False
    assert result["page"] == [12, 11, True, False]


def test_a_sync_is_repeated_while_it_makes_progress_but_never_loops_on_nothing(
    page: Any,
) -> None:
    result = run(
        page,
        """
        const { SeqTracker } = await chat("sequence");
        const seqs = new SeqTracker(2);
        const out = {};
        // One sync at a time; a request meanwhile is remembered and answered after it.
        out.first = seqs.maySync();
        seqs.syncSent();
        out.whileSyncing = seqs.maySync();
        seqs.hold(3);
        out.resync = seqs.syncDone(3);
        seqs.syncSent();
        // The batch brought 4 and 5 but the server is at 9: ask again from 5.
        seqs.hold(4);
        seqs.hold(5);
        out.behindWithProgress = seqs.syncDone(9);
        out.from = seqs.lastSeq;
        seqs.syncSent();
        // Nothing came although the server says 9: do not ask again (no loop).
        out.behindWithoutProgress = seqs.syncDone(9);
        seqs.syncSent();
        out.upToDate = seqs.syncDone(5);
        seqs.syncSent();
        out.noLastSeq = seqs.syncDone(undefined);
        seqs.syncSent();
        seqs.syncAbandoned();
        out.afterAbandon = [seqs.syncing, seqs.maySync()];
        out.caughtUp = seqs.caughtUp;
        return out;
        """,
    )

    assert result == {
        "first": True,
        "whileSyncing": False,
        "resync": True,
        "behindWithProgress": True,
        "from": 5,
        "behindWithoutProgress": False,
        "upToDate": False,
        "noLastSeq": False,
        "afterAbandon": [False, True],
        "caughtUp": True,
    }


def test_reconnecting_backs_off_exponentially_with_jitter_up_to_a_ceiling(page: Any) -> None:
    result = run(
        page,
        """
        const { reconnectDelay } = await chat("socket");
        const low = () => 0;
        const high = () => 0.999999;
        return {
          first: [reconnectDelay(0, 0, low), reconnectDelay(0, 0, high)],
          third: [reconnectDelay(2, 0, low), reconnectDelay(2, 0, high)],
          ceiling: [reconnectDelay(20, 0, low), reconnectDelay(20, 0, high)],
          rateLimited: reconnectDelay(0, 15000, high),
        };
        """,
    )

    assert result["first"] == [250, 500]
    assert result["third"] == [1000, 2000]
    assert result["ceiling"] == [15000, 30000]
    assert result["rateLimited"] == 15000


# --- text and links ---------------------------------------------------------------------------


def test_only_web_links_become_links_and_the_text_is_kept_exactly(page: Any) -> None:
    hostile = (
        '<img src=x onerror="window.pwned=1"> javascript:alert(1) JAVASCRIPT:alert(2) '
        "see https://customs.example/manifest?id=7&x=1, or (http://port.example/berth/14). "
        "data:text/html,<script>window.pwned=2</script> vbscript:msgbox https:// "
        "ftp://files.example/a"
    )
    tokens = run(
        page, 'const { linkTokens } = await chat("linkify"); return linkTokens(arg);', hostile
    )

    assert "".join(token["text"] for token in tokens) == hostile
    links = [token for token in tokens if "href" in token]
    assert links == [
        {
            "text": "https://customs.example/manifest?id=7&x=1",
            "href": "https://customs.example/manifest?id=7&x=1",
        },
        {"text": "http://port.example/berth/14", "href": "http://port.example/berth/14"},
    ]


def test_linkified_text_reaches_the_page_as_text_nodes_and_safe_anchors(page: Any) -> None:
    result = run(
        page,
        """
        const { appendLinkified } = await chat("render");
        const body = document.createElement("div");
        document.body.append(body);
        appendLinkified(body, arg);
        return {
          text: body.textContent,
          nodes: Array.from(body.childNodes, (node) => node.nodeName),
          links: Array.from(body.querySelectorAll("a"), (a) => [
            a.getAttribute("href"), a.rel, a.target, a.textContent,
          ]),
          pwned: window.pwned === undefined ? null : window.pwned,
        };
        """,
        '<b>bold</b> <img src=x onerror="window.pwned=1"> javascript:alert(1) '
        "https://customs.example/a?b=1&c=2.",
    )

    assert result["text"] == (
        '<b>bold</b> <img src=x onerror="window.pwned=1"> javascript:alert(1) '
        "https://customs.example/a?b=1&c=2."
    )
    assert result["nodes"] == ["#text", "A", "#text"]
    assert result["links"] == [
        [
            "https://customs.example/a?b=1&c=2",
            "noopener noreferrer",
            "_blank",
            "https://customs.example/a?b=1&c=2",
        ]
    ]
    assert result["pwned"] is None


def test_attachment_links_from_the_server_stay_on_this_site(page: Any) -> None:
    result = run(
        page,
        """
        const { sameOriginPath } = await chat("linkify");
        const origin = "https://liaison.example";
        return [
          "/api/v1/attachments/9/download?v=2",
          "https://liaison.example/api/v1/attachments/9/thumbnail",
          "https://evil.example/x",
          "//evil.example/x",
          "javascript:alert(1)",
          "",
          null,
        ].map((value) => sameOriginPath(value, origin));
        """,
    )

    assert result == [
        "/api/v1/attachments/9/download?v=2",
        "/api/v1/attachments/9/thumbnail",
        None,
        None,
        None,
        None,
        None,
    ]


# --- times, sizes, people, unread counts, settings -------------------------------------------


def test_times_are_shown_in_the_readers_zone_with_the_senders_time_when_it_differs(
    page: Any,
) -> None:
    result = run(
        page,
        """
        const { makeClock, validZone } = await chat("format");
        const now = () => new Date("2025-06-01T12:00:00Z");
        const london = makeClock({ timeZone: "Europe/London", now });
        const broken = makeClock({ timeZone: "Mars/Olympus", now });
        return {
          timeOnly: london.time("2025-05-30T08:05:00Z"),
          today: london.short("2025-06-01T08:05:00Z"),
          earlier: london.short("2025-05-30T08:05:00Z"),
          // Midnight in London is still the previous day in UTC.
          pastMidnight: london.short("2025-05-31T23:30:00Z"),
          full: london.full("2025-06-01T08:05:00Z", "Asia/Shanghai"),
          sameZone: london.full("2025-06-01T08:05:00Z", "Europe/London"),
          unknownSender: london.full("2025-06-01T08:05:00Z", "Nowhere/Nothing"),
          fallbackZone: broken.zone,
          fallbackTime: broken.short("2025-06-01T08:05:00Z"),
          invalid: [london.short("not a date"), london.full("", null)],
          zones: [validZone("Asia/Shanghai"), validZone("Mars/Olympus"), validZone("")],
        };
        """,
    )

    assert result["today"] == "09:05"
    assert result["timeOnly"] == "09:05"  # beside a day separator, the time alone
    assert result["earlier"] != "09:05"
    assert "30" in result["earlier"]
    assert "09:05" in result["earlier"]
    assert result["pastMidnight"] == "00:30"
    # The reader's time, the sender's local time, and UTC.
    first, second, third = result["full"].split("\n")
    assert first.endswith("(your time, Europe/London)")
    assert "09:05" in first
    assert second.startswith("Sender's local time: ")
    assert "16:05" in second
    assert second.endswith("(Asia/Shanghai)")
    assert third.startswith("UTC: ")
    assert "08:05" in third
    # A sender in the reader's zone: one line says both, then UTC.
    same, utc = result["sameZone"].split("\n")
    assert same.endswith("(your time and the sender's, Europe/London)")
    assert utc.startswith("UTC: ")
    # A sender's zone that is not known: the reader's time and UTC only.
    assert len(result["unknownSender"].split("\n")) == 2
    assert "Sender's" not in result["unknownSender"]
    assert result["fallbackZone"] == "UTC"
    assert result["fallbackTime"] == "08:05"
    assert result["invalid"] == ["", ""]
    assert result["zones"] == ["Asia/Shanghai", None, None]


def test_sizes_people_unread_counts_and_settings_are_read_as_the_page_expects(
    page: Any,
) -> None:
    result = run(
        page,
        """
        const { formatSize } = await chat("format");
        const { typingText, agencyName, onlineIds, onlineAfter } = await chat("people");
        const { unreadEntries } = await chat("unread");
        const { readConfig } = await chat("config");
        return {
          sizes: [0, 1023, 1024, 1536, 10 * 1024 * 1024, 3 * 1024 ** 4, -1, "x"].map(formatSize),
          typing: [[], ["Li Wei"], ["Li Wei", "Chen Jing"], ["a", "b", "c"]].map(typingText),
          agencies: [
            { agency: "HMRC" }, { agency: { name: "GACC", code: "gacc" } },
            { agency: { code: "ukbf" } }, {},
          ].map(agencyName),
          online: Array.from(onlineIds([3, { id: 4 }, null])),
          // The full list when the socket joins, then who joined or left.
          presence: [
            { online: [2, 3] }, { joined: [4] }, { joined: [3] }, { left: [2] }, { left: [9] },
            { type: "presence" }, { online: [] },
          ].reduce(
            (seen, frame) => [...seen, Array.from(onlineAfter(new Set(seen.at(-1)), frame))],
            [[1]],
          ),
          unread: unreadEntries({ rooms: { 2: 5, 3: "1", x: 4, 4: "many" } }),
          noRooms: [unreadEntries(null), unreadEntries({}), unreadEntries({ rooms: null })],
          config: readConfig({
            roomId: "3", userId: "7", lastSeq: "60", pageSize: "0", canPost: "true",
            maxUploadBytes: "", wsPath: "/ws/rooms/3/",
          }),
        };
        """,
    )

    assert result["sizes"] == ["0 B", "1023 B", "1.0 KiB", "1.5 KiB", "10 MiB", "3072 GiB", "", ""]
    assert result["typing"] == [
        "",
        "Li Wei is typing…",
        "Li Wei and Chen Jing are typing…",
        "Several people are typing…",
    ]
    assert result["agencies"] == ["HMRC", "GACC", "ukbf", ""]
    assert result["online"] == [3, 4, None]
    assert result["presence"] == [[1], [2, 3], [2, 3, 4], [2, 3, 4], [3, 4], [3, 4], [3, 4], []]
    assert result["unread"] == [[2, 5], [3, 1]]
    assert result["noRooms"] == [[], [], []]
    config = result["config"]
    assert (config["roomId"], config["userId"], config["lastSeq"]) == (3, 7, 60)
    assert config["pageSize"] == 1
    assert config["canPost"] is True
    assert config["maxUploadBytes"] == 0
    assert config["userName"] == "You"
    assert config["timeZone"] == "UTC"
    assert config["loginUrl"] == "/login/"


def test_user_visible_strings_go_through_the_javascript_catalogue_when_it_is_loaded(
    page: Any,
) -> None:
    result = run(
        page,
        """
        window.gettext = (text) => `[${text}]`;
        window.ngettext = (one, many, count) => `[${count === 1 ? one : many}]`;
        const { strings, fill } = await chat("strings");
        return {
          plain: strings.connecting,
          filled: strings.typingOne("Li Wei"),
          counted: strings.unreadCount(2),
          error: strings.errorWithDetail(strings.errorTitle("invalid"), "The message is empty."),
          unknownCode: strings.errorTitle("constructor"),
          keepsUnknownPlaceholders: fill("%(a)s and %(b)s", { a: "%(b)s" }),
        };
        """,
    )

    assert result == {
        "plain": "[Connecting…]",
        "filled": "[%(name)s is typing…]".replace("%(name)s", "Li Wei"),
        "counted": "[%(count)s unread]".replace("%(count)s", "2"),
        "error": "[%(title)s: %(detail)s]".replace("%(title)s", "[Not accepted]").replace(
            "%(detail)s", "The message is empty."
        ),
        "unknownCode": "[Error]",
        "keepsUnknownPlaceholders": "%(b)s and %(b)s",
    }
