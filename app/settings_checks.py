"""The conversions and checks ``load_settings`` applies to single values:
a variable's text as its type, an ldap:// URL to this machine, the trusted
proxies, the languages and their catalogs, a rate limit. Each check appends
what is wrong to ``problems``."""
from __future__ import annotations

import re
from pathlib import Path


def convert(kind, raw: str):
    if kind is bool:
        value = raw.strip().lower()
        if value in ("1", "true", "yes", "on"):
            return True
        if value in ("0", "false", "no", "off", ""):
            return False
        raise ValueError("expected true or false")
    if kind is tuple:
        return tuple(part for part in raw.replace(",", " ").split() if part)
    return kind(raw.strip()) if kind is not str else raw.strip()


def loopback(url: str) -> bool:
    """Is the host of an ldap:// URL this machine (127.0.0.0/8, ::1, localhost)?"""
    import ipaddress
    from urllib.parse import urlsplit
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def trusted_proxies(values: dict, problems: list[str]) -> None:
    """PORTAL_TRUSTED_PROXIES: the addresses or networks (comma or space
    separated) of the TLS terminators in front of gunicorn, one hop; a bare
    number N (the older form) means N hops from this machine (loopback)."""
    import ipaddress
    raw = values.get("trusted_proxies", "")
    if not isinstance(raw, str):
        return
    parts = [p for p in raw.replace(",", " ").split() if p]
    if parts == ["0"] or not parts:
        values["trusted_proxies"], values["trusted_proxy_networks"] = 0, ()
        return
    if len(parts) == 1 and parts[0].isdigit():
        values["trusted_proxies"] = int(parts[0])
        values["trusted_proxy_networks"] = (ipaddress.ip_network("127.0.0.0/8"),
                                            ipaddress.ip_network("::1/128"))
        return
    networks = []
    for part in parts:
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            problems.append(f"PORTAL_TRUSTED_PROXIES: {part!r} is not an address or network "
                            "(e.g. 127.0.0.1 or 10.0.0.0/24)")
    values["trusted_proxies"], values["trusted_proxy_networks"] = 1, tuple(networks)


TRANSLATIONS = Path(__file__).resolve().parents[1] / "translations"
SOURCE_LANGUAGE = "en"  # the message ids: needs no catalog


def check_languages(languages: tuple[str, ...], problems: list[str]) -> None:
    """Each language a locale code (de, pt_BR) with a catalog in translations/."""
    for code in languages:
        if not re.fullmatch(r"[a-z]{2,3}(_[A-Z]{2})?", code):
            problems.append(f"PORTAL_LANGUAGES: {code!r} is not a language code like de or pt_BR")
        elif code != SOURCE_LANGUAGE and \
                not (TRANSLATIONS / code / "LC_MESSAGES" / "messages.po").is_file():
            problems.append(f"PORTAL_LANGUAGES: there is no catalog for {code!r} "
                            f"(translations/{code}/LC_MESSAGES/messages.po)")
    if len(set(languages)) != len(languages):
        problems.append("PORTAL_LANGUAGES names a language twice")


def valid_rate_limit(text: str) -> bool:
    from limits import parse_many
    try:
        return bool(parse_many(text))
    except ValueError:
        return False
