"""The profile page (display name, time zone, language, e-mail notifications) and the language
switch: every change goes through the accounts service and is audited; the language follows
the saved choice, then the browser's Accept-Language, then English."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client

from liaison.errors import Invalid
from liaison.models import AuditEvent, User
from liaison.services import accounts
from tests.conftest import sign_in

PROFILE = "/account/profile/"
SWITCH = "/i18n/language/"


def profile_form(user: User, **changes: object) -> dict[str, object]:
    data: dict[str, object] = {
        "display_name": user.display_name,
        "time_zone": user.time_zone,
        "language": user.language,
    }
    if user.email_notifications:
        data["email_notifications"] = "on"
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def html_lang(response) -> str:
    text = response.content.decode()
    start = text.index("<html lang=") + len('<html lang="')
    return text[start : text.index('"', start)]


# --- the profile page ---------------------------------------------------------------------------


def test_the_profile_page_shows_the_officers_settings_and_a_searchable_zone_list(
    gz_officer: User,
) -> None:
    response = sign_in(Client(), gz_officer).get(PROFILE)

    assert response.status_code == 200
    text = response.content.decode()
    assert 'value="Li Wei"' in text
    assert 'list="time-zones"' in text
    assert '<datalist id="time-zones">' in text
    assert '<option value="Asia/Shanghai">' in text
    assert '<option value="Europe/London">' in text
    assert 'name="email_notifications"' in text


def test_the_header_links_to_the_profile(uk_officer: User) -> None:
    response = sign_in(Client(), uk_officer).get("/")

    assert f'href="{PROFILE}"' in response.content.decode()


def test_an_anonymous_visitor_is_sent_to_sign_in() -> None:
    response = Client().get(PROFILE)

    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_profile_changes_are_saved_and_audited_with_old_and_new_values(uk_officer: User) -> None:
    client = sign_in(Client(), uk_officer)

    response = client.post(
        PROFILE,
        profile_form(
            uk_officer,
            display_name="  Olivia   M. Hughes ",
            time_zone="Europe/Dublin",
            language="zh-hans",
            email_notifications=None,
        ),
    )

    assert response.status_code == 302
    uk_officer.refresh_from_db()
    assert uk_officer.display_name == "Olivia M. Hughes"
    assert uk_officer.time_zone == "Europe/Dublin"
    assert uk_officer.language == "zh-hans"
    assert uk_officer.email_notifications is False
    event = AuditEvent.objects.get(action="account.profile_changed")
    assert event.actor_id == uk_officer.pk
    assert event.details["changes"] == {
        "display_name": {"old": "Olivia Hughes", "new": "Olivia M. Hughes"},
        "time_zone": {"old": "Europe/London", "new": "Europe/Dublin"},
        "language": {"old": "", "new": "zh-hans"},
        "email_notifications": {"old": True, "new": False},
    }
    # The next page is already in the new language.
    page = client.get(PROFILE)
    assert html_lang(page) == "zh-hans"
    assert "个人资料" in page.content.decode()


def test_an_unchanged_profile_records_nothing(uk_officer: User) -> None:
    client = sign_in(Client(), uk_officer)

    response = client.post(PROFILE, profile_form(uk_officer), follow=True)

    assert response.status_code == 200
    assert not AuditEvent.objects.filter(action="account.profile_changed").exists()


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "london", "", "Europe/London; DROP"])
def test_a_bad_time_zone_is_rejected_with_a_clear_error(uk_officer: User, zone: str) -> None:
    client = sign_in(Client(), uk_officer)

    response = client.post(PROFILE, profile_form(uk_officer, time_zone=zone))

    assert response.status_code == 400
    text = response.content.decode()
    assert "field-error" in text
    if zone:
        assert "is not a time zone Liaison knows" in text
        assert "Europe/London" in text  # an example of a good one
    uk_officer.refresh_from_db()
    assert uk_officer.time_zone == "Europe/London"
    assert not AuditEvent.objects.filter(action="account.profile_changed").exists()


def test_a_bad_time_zone_is_explained_in_the_readers_language(gz_officer: User) -> None:
    gz_officer.language = "zh-hans"
    gz_officer.save(update_fields=["language"])
    client = sign_in(Client(), gz_officer)

    response = client.post(PROFILE, profile_form(gz_officer, time_zone="Mars/Base"))

    assert response.status_code == 400
    assert "不是 Liaison 可识别的时区" in response.content.decode()


def test_an_empty_display_name_is_refused(uk_officer: User) -> None:
    response = sign_in(Client(), uk_officer).post(
        PROFILE, profile_form(uk_officer, display_name="   ")
    )

    assert response.status_code == 400
    uk_officer.refresh_from_db()
    assert uk_officer.display_name == "Olivia Hughes"


def test_the_service_refuses_an_unknown_language(uk_officer: User) -> None:
    with pytest.raises(Invalid) as refused:
        accounts.update_profile(
            user=uk_officer,
            display_name="Olivia Hughes",
            time_zone="Europe/London",
            language="fr",
            email_notifications=True,
            ip=None,
        )

    assert refused.value.field == "language"
    with pytest.raises(Invalid):
        accounts.set_language(user=uk_officer, language="klingon", ip=None)


# --- the language switch and the order of choice -------------------------------------------------


def test_the_saved_language_beats_accept_language(gz_officer: User) -> None:
    gz_officer.language = "zh-hans"
    gz_officer.save(update_fields=["language"])

    response = sign_in(Client(), gz_officer).get("/", HTTP_ACCEPT_LANGUAGE="en-GB,en;q=0.9")

    assert html_lang(response) == "zh-hans"
    assert response["Content-Language"] == "zh-hans"
    assert "我的专项行动" in response.content.decode()


def test_the_saved_language_beats_a_language_cookie(uk_officer: User) -> None:
    uk_officer.language = "en"
    uk_officer.save(update_fields=["language"])
    client = sign_in(Client(), uk_officer)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"

    response = client.get("/")

    assert html_lang(response) == "en"


def test_without_a_saved_choice_accept_language_decides(uk_officer: User) -> None:
    assert uk_officer.language == ""

    response = sign_in(Client(), uk_officer).get("/", HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9")

    assert html_lang(response) == "zh-hans"


def test_english_is_the_default(uk_officer: User) -> None:
    signed_in = sign_in(Client(), uk_officer).get("/", HTTP_ACCEPT_LANGUAGE="fr-FR,de;q=0.8")
    anonymous = Client().get("/login/")

    assert html_lang(signed_in) == "en"
    assert html_lang(anonymous) == "en"
    assert "Sign in" in anonymous.content.decode()


def test_the_header_switch_saves_the_choice_audits_it_and_changes_the_page_at_once(
    uk_officer: User,
) -> None:
    client = sign_in(Client(), uk_officer)
    home = client.get("/")
    assert f'action="{SWITCH}"' in home.content.decode()

    response = client.post(SWITCH, {"language": "zh-hans", "next": "/account/security/"})

    assert response.status_code == 302
    assert response["Location"] == "/account/security/"
    uk_officer.refresh_from_db()
    assert uk_officer.language == "zh-hans"
    event = AuditEvent.objects.get(action="account.language_changed")
    assert event.actor_id == uk_officer.pk
    assert event.details == {"old": "", "new": "zh-hans"}
    page = client.get("/account/security/", HTTP_ACCEPT_LANGUAGE="en")
    assert html_lang(page) == "zh-hans"
    assert "安全" in page.content.decode()

    client.post(SWITCH, {"language": "en", "next": "/"})
    uk_officer.refresh_from_db()
    assert uk_officer.language == "en"
    assert AuditEvent.objects.filter(action="account.language_changed").count() == 2
    assert html_lang(client.get("/")) == "en"


def test_switching_to_the_current_language_records_nothing(uk_officer: User) -> None:
    uk_officer.language = "en"
    uk_officer.save(update_fields=["language"])

    sign_in(Client(), uk_officer).post(SWITCH, {"language": "en", "next": "/"})

    assert not AuditEvent.objects.filter(action="account.language_changed").exists()


def test_the_sign_in_page_has_the_switch_and_it_works_before_signing_in(db: None) -> None:
    client = Client()
    login = client.get("/login/")
    assert f'action="{SWITCH}"' in login.content.decode()

    response = client.post(SWITCH, {"language": "zh-hans", "next": "/login/"})

    assert response.status_code == 302
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "zh-hans"
    page = client.get("/login/", HTTP_ACCEPT_LANGUAGE="en")
    assert html_lang(page) == "zh-hans"
    assert "登录" in page.content.decode()
    assert not AuditEvent.objects.filter(action="account.language_changed").exists()


def test_the_switch_ignores_unknown_languages_and_foreign_next_urls(uk_officer: User) -> None:
    client = sign_in(Client(), uk_officer)

    response = client.post(SWITCH, {"language": "xx", "next": "https://evil.example/"})

    assert response.status_code == 302
    assert response["Location"] == "/"
    uk_officer.refresh_from_db()
    assert uk_officer.language == ""


def test_the_switch_only_answers_post(db: None) -> None:
    assert Client().get(SWITCH).status_code == 405
