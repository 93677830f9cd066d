"""Unit tests of app/settings.py: every problem of the configuration at once."""
from __future__ import annotations

import tomllib

import pytest

from app import create_app
from app.collaboration import LocalText
from app.settings import (
    DEFAULT_COLLABORATION_FILE,
    ENV_NAMES,
    ROOT,
    Category,
    SettingsError,
    load_settings,
)

STRONG_KEY = "k" * 8 + "3x9-Vq_Lz7Rw2Pb5Nt8Hs4Jd6Fc1Gm0Y"  # 40 characters
REQUIRED = (
    "PORTAL_SECRET_KEY", "PORTAL_BASE_URL", "PORTAL_LDAP_URLS", "PORTAL_LDAP_BASE_DN",
    "PORTAL_LDAP_BIND_DN", "PORTAL_LDAP_BIND_PASSWORD", "PORTAL_MAIL_FROM",
    "PORTAL_COLLABORATION_NAME", "PORTAL_MAIL_DOMAIN", "PORTAL_HELPDESK_EMAIL",
)


def production_environment(**changes) -> dict[str, str]:
    env = {
        "PORTAL_SECRET_KEY": STRONG_KEY,
        "PORTAL_BASE_URL": "https://portal.example.org/",
        "PORTAL_LDAP_URLS": "ldaps://ldap1.example.org, ldaps://ldap2.example.org",
        "PORTAL_LDAP_BASE_DN": "dc=example,dc=org",
        "PORTAL_LDAP_BIND_DN": "cn=portal,ou=services,dc=example,dc=org",
        "PORTAL_LDAP_BIND_PASSWORD": "service-password",
        "PORTAL_MAIL_FROM": "Registry <registry@example.org>",
        "PORTAL_COLLABORATION_NAME": "Example Collaboration",
        "PORTAL_MAIL_DOMAIN": "example.org",
        "PORTAL_HELPDESK_EMAIL": "helpdesk@example.org",
        "PORTAL_RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379/0",
    }
    env.update(changes)
    return {k: v for k, v in env.items() if v is not None}


def problems_of(environ) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        load_settings(environ)
    return caught.value.problems


def mentions(problems: list[str], name: str) -> bool:
    return any(name in p for p in problems)


def test_empty_environment_lists_every_required_variable_at_once():
    problems = problems_of({})
    for name in REQUIRED:
        assert f"{name} is required" in problems, name
    # Variables with a default are not reported.
    for name in ("PORTAL_ENV", "PORTAL_SMTP_PORT", "PORTAL_PASSWORD_MIN_LENGTH",
                 "PORTAL_COLLABORATION_FILE"):
        assert not mentions(problems, name), name
    # Production (the default) needs a shared store for the rate limits too.
    assert mentions(problems, "PORTAL_RATELIMIT_STORAGE_URI")
    assert len(problems) == len(REQUIRED) + 1


def test_the_error_message_lists_the_problems():
    with pytest.raises(SettingsError) as caught:
        load_settings({})
    assert "PORTAL_SECRET_KEY is required" in str(caught.value)
    assert "PORTAL_MAIL_DOMAIN is required" in str(caught.value)


def test_blank_required_values_count_as_missing():
    problems = problems_of(production_environment(PORTAL_SECRET_KEY="   ",
                                                  PORTAL_LDAP_URLS=""))
    assert "PORTAL_SECRET_KEY is required" in problems
    assert "PORTAL_LDAP_URLS is required" in problems


def test_all_required_names_are_known_settings():
    assert set(REQUIRED) <= set(ENV_NAMES)


def test_valid_production_environment_loads():
    settings = load_settings(production_environment())
    assert settings.env == "production" and settings.is_production
    assert settings.secret_key == STRONG_KEY
    assert settings.base_url == "https://portal.example.org"  # trailing slash removed
    assert settings.ldap_urls == ("ldaps://ldap1.example.org", "ldaps://ldap2.example.org")
    assert settings.smtp_port == 25 and settings.smtp_use_tls is False
    assert settings.password_min_length == 12
    assert settings.link_max_age_days == 14
    assert settings.collaboration_file == str(DEFAULT_COLLABORATION_FILE)


def test_typed_values_are_converted():
    settings = load_settings(production_environment(
        PORTAL_SMTP_PORT="587", PORTAL_SMTP_USE_TLS="yes", PORTAL_LDAP_CONNECT_TIMEOUT="2.5",
        PORTAL_PASSWORD_MIN_LENGTH="16", PORTAL_SECRET_KEY_FALLBACKS="old1 old2"))
    assert settings.smtp_port == 587
    assert settings.smtp_use_tls is True
    assert settings.ldap_connect_timeout == 2.5
    assert settings.password_min_length == 16
    assert settings.secret_key_fallbacks == ("old1", "old2")


def test_collaboration_file_contents_are_loaded():
    settings = load_settings(production_environment())
    data = tomllib.loads((ROOT / "config" / "collaboration.toml").read_text())
    assert settings.categories == tuple(
        Category(c["key"], LocalText(c["label"]), c.get("membership_days"),
                 tuple(c.get("approval", ["ir"])), LocalText(c.get("formal_application", "")))
        for c in data["categories"])
    assert "formal application" in settings.formal_application("physicist-permanent")
    assert settings.approval_chain("physicist-permanent") == ("ir", "group:ib")
    assert settings.approval_chain("phd-student") == ("ir",)
    assert Category("student", "Student (temporary)", 365) in settings.categories
    assert Category("phd-student", "PhD student") in settings.categories
    assert settings.category_label("phd-student") == "PhD student"
    assert settings.conditions.version == "2026-01"
    assert settings.conditions.title == data["conditions"]["title"]["en"]
    assert settings.conditions.text.startswith("1. The account")
    assert "gmail.com" in settings.webmail_domains and "yahoo.*" in settings.webmail_domains
    assert len(settings.webmail_domains) == len(data["webmail_domains"])
    assert {"root", "admin", "helpdesk"} <= settings.reserved_account_names
    assert settings.reserved_account_names == frozenset(data["reserved_account_names"])


@pytest.mark.parametrize("key", ["changeme", "secret", "short-key", "x" * 31,
                                 "you-will-never-guess"])
def test_weak_secret_key_is_refused_in_production(key):
    problems = problems_of(production_environment(PORTAL_SECRET_KEY=key))
    assert len(problems) == 1
    assert problems[0].startswith("PORTAL_SECRET_KEY is too weak")


@pytest.mark.parametrize("env", ["dev", "test"])
def test_weak_secret_key_and_http_are_accepted_outside_production(env):
    settings = load_settings(production_environment(
        PORTAL_ENV=env, PORTAL_SECRET_KEY="changeme", PORTAL_BASE_URL="http://localhost:5000"))
    assert settings.env == env
    assert settings.secret_key == "changeme"
    assert settings.base_url == "http://localhost:5000"


def test_production_is_the_default_environment():
    assert load_settings(production_environment()).env == "production"
    problems = problems_of(production_environment(PORTAL_SECRET_KEY="changeme"))
    assert mentions(problems, "too weak")


def test_http_base_url_is_refused_in_production():
    problems = problems_of(production_environment(PORTAL_BASE_URL="http://portal.example.org"))
    assert problems == ["PORTAL_BASE_URL must use https:// in production"]


def test_base_url_needs_a_scheme():
    problems = problems_of(production_environment(PORTAL_ENV="dev",
                                                  PORTAL_BASE_URL="portal.example.org"))
    assert problems == ["PORTAL_BASE_URL must start with http:// or https://"]


def test_unknown_environment_is_refused():
    problems = problems_of(production_environment(PORTAL_ENV="staging"))
    assert mentions(problems, "PORTAL_ENV must be one of")


def test_empty_optional_setting_takes_its_default():
    settings = load_settings(production_environment(PORTAL_PASSWORD_MIN_LENGTH=""))
    assert settings.password_min_length == 12


@pytest.mark.parametrize("value", ["twelve", "12.5"])
def test_non_integer_password_min_length_is_reported(value):
    problems = problems_of(production_environment(PORTAL_PASSWORD_MIN_LENGTH=value))
    assert len(problems) == 1
    assert problems[0].startswith(f"PORTAL_PASSWORD_MIN_LENGTH={value!r} is not valid")


def test_too_small_password_min_length_is_reported():
    problems = problems_of(production_environment(PORTAL_PASSWORD_MIN_LENGTH="6"))
    assert problems == ["PORTAL_PASSWORD_MIN_LENGTH must be at least 8"]


def test_invalid_boolean_and_ldap_url_are_reported():
    problems = problems_of(production_environment(PORTAL_SMTP_USE_TLS="maybe",
                                                  PORTAL_LDAP_URLS="http://ldap.example.org"))
    assert mentions(problems, "PORTAL_SMTP_USE_TLS='maybe' is not valid")
    assert mentions(problems, "PORTAL_LDAP_URLS: 'http://ldap.example.org'")


def test_mail_domain_must_not_be_an_address():
    problems = problems_of(production_environment(PORTAL_MAIL_DOMAIN="registry@example.org"))
    assert mentions(problems, "PORTAL_MAIL_DOMAIN is a domain")


def test_missing_collaboration_file_is_reported(tmp_path):
    missing = tmp_path / "nowhere.toml"
    problems = problems_of(production_environment(PORTAL_COLLABORATION_FILE=str(missing)))
    assert problems == [f"PORTAL_COLLABORATION_FILE: {missing} does not exist"]


def test_broken_collaboration_file_is_reported(tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text("[conditions\nversion = ")
    problems = problems_of(production_environment(PORTAL_COLLABORATION_FILE=str(broken)))
    assert mentions(problems, "cannot be read")


def test_incomplete_collaboration_file_is_reported(tmp_path):
    incomplete = tmp_path / "incomplete.toml"
    incomplete.write_text('[conditions]\nversion = "1"\n')
    problems = problems_of(production_environment(PORTAL_COLLABORATION_FILE=str(incomplete)))
    assert mentions(problems, "at least one [[categories]] entry is required")
    assert mentions(problems, "[conditions] needs version and text")


def test_a_custom_collaboration_file_is_used(tmp_path):
    custom = tmp_path / "custom.toml"
    custom.write_text(
        'webmail_domains = ["Mail.Example"]\nreserved_account_names = ["Boss"]\n'
        '[[categories]]\nkey = "k"\nlabel = "K"\n'
        '[conditions]\nversion = "v9"\ntext = "  Be nice.  "\n')
    settings = load_settings(production_environment(PORTAL_COLLABORATION_FILE=str(custom)))
    assert settings.categories == (Category("k", "K"),)
    assert settings.conditions.version == "v9" and settings.conditions.text == "Be nice."
    assert settings.conditions.title == "Conditions of use"
    assert settings.webmail_domains == ("mail.example",)
    assert settings.reserved_account_names == frozenset({"boss"})


def test_texts_of_the_collaboration_file_in_each_language_else_english(tmp_path):
    from flask import Flask
    from flask_babel import Babel, force_locale
    app = Flask(__name__)
    Babel(app)
    custom = tmp_path / "custom.toml"
    custom.write_text(
        '[stage_labels]\nib = { en = "board", de = "Rat" }\n'
        '[[groups]]\ncn = "naf"\nlabel = "NAF"\nmanagers = "m"\n'
        '[[categories]]\nkey = "k"\nlabel = { en = "Kind", de = "Art", ja = "種類" }\n'
        'formal_application = { en = "a letter", ja = "書簡" }\n'
        '[conditions]\nversion = "v9"\n[conditions.title]\nen = "Rules"\nde = "Regeln"\n'
        '[conditions.text]\nen = " Be nice. "\nde = " Seien Sie nett. "\n')
    settings = load_settings(production_environment(PORTAL_COLLABORATION_FILE=str(custom)))
    shown = {}
    with app.test_request_context("/"):
        for lang in ("en", "de", "ja", "fr"):
            with force_locale(lang):
                shown[lang] = (str(settings.category_label("k")),
                               f"{settings.formal_application('k')}",
                               str(settings.stage_labels["ib"]),
                               str(settings.extra_groups[0].label),
                               str(settings.conditions.title), str(settings.conditions.text))
    assert shown["en"] == ("Kind", "a letter", "board", "NAF", "Rules", "Be nice.")
    assert shown["de"] == ("Art", "a letter", "Rat", "NAF", "Regeln", "Seien Sie nett.")
    assert shown["ja"] == ("種類", "書簡", "board", "NAF", "Rules", "Be nice.")
    assert shown["fr"] == shown["en"]
    # Outside any page or mail: English.
    assert settings.category_label("k") == "Kind" and settings.category_label("x") == "x"
    custom.write_text(
        '[[categories]]\nkey = "k"\nlabel = { de = "Art" }\n'
        '[[categories]]\nkey = "j"\nlabel = { en = "J", "de-DE" = "J" }\n'
        '[conditions]\nversion = "v9"\ntext = { en = 3 }\n')
    problems = problems_of(production_environment(PORTAL_COLLABORATION_FILE=str(custom)))
    assert [p for p in problems if "table of texts by language code" in p] == [
        f"{custom}: label is a text, or a table of texts by language code with \"en\" "
        "(the fallback) in it"] * 2 + [
        f"{custom}: [conditions] text is a text, or a table of texts by language code with "
        "\"en\" (the fallback) in it"]


def test_problems_from_the_environment_and_the_file_come_together(tmp_path):
    problems = problems_of({"PORTAL_COLLABORATION_FILE": str(tmp_path / "missing.toml"),
                            "PORTAL_PASSWORD_MIN_LENGTH": "many"})
    assert "PORTAL_SECRET_KEY is required" in problems
    assert mentions(problems, "PORTAL_PASSWORD_MIN_LENGTH='many' is not valid")
    assert mentions(problems, "does not exist")


def test_create_app_refuses_a_bad_environment(monkeypatch):
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SettingsError) as caught:
        create_app({"PORTAL_SECRET_KEY": "changeme"})
    assert "PORTAL_SECRET_KEY is too weak" in str(caught.value)
    assert "PORTAL_LDAP_URLS is required" in caught.value.problems


def test_memory_rate_limits_and_inline_mail_are_refused_in_production():
    problems = problems_of(production_environment(PORTAL_RATELIMIT_STORAGE_URI="memory://"))
    assert len(problems) == 1 and "memory:// counts in each worker" in problems[0]
    problems = problems_of(production_environment(PORTAL_RATELIMIT_STORAGE_URI=None))
    assert len(problems) == 1 and "PORTAL_RATELIMIT_STORAGE_URI" in problems[0]
    problems = problems_of(production_environment(PORTAL_MAIL_DELIVERY="inline"))
    assert len(problems) == 1 and "web workers wait on SMTP" in problems[0]
    assert load_settings(production_environment()).mail_delivery == "outbox"
    dev = load_settings(production_environment(PORTAL_ENV="dev",
                                               PORTAL_RATELIMIT_STORAGE_URI="memory://",
                                               PORTAL_MAIL_DELIVERY="inline"))
    assert dev.ratelimit_storage_uri == "memory://" and dev.mail_delivery == "inline"
