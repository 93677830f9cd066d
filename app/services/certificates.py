"""Grid user certificates: what a verified certificate's subject says about
its holder (the registration form is prefilled from it), logging in with
one, and the certificates on a member's entry (a renewed one added, old
ones removed). The certificate itself is checked by the TLS terminator;
the portal sees its subject and issuer DN (RFC 2253) only."""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..clock import Clock, utcnow
from ..directory import Certificate, Directory, StateConflict
from ..settings import Settings
from ..vocabulary import MemberStatus
from . import names
from .accounts import LoginOutcome, LoginResult
from .audit import Actor, audit_event
from .errors import ServiceError

# RFC 2253 names of the attribute types that carry an address; OpenSSL prints
# emailAddress as such, others as the OID.
_EMAIL_TYPES = {"emailaddress", "email", "e", "1.2.840.113549.1.9.1"}
_EMAIL_RE = re.compile(r"[^\s@,;<>()\"']+@[^\s@,;<>()\"']+\.[^\s@,;<>()\"']+")
_MAX_DN = 1024


class CertificateProblem(ServiceError):
    """The certificate cannot be used for this (already on the entry, not there)."""


def parse_dn(dn: str) -> list[tuple[str, str]]:
    """The (type, value) pairs of an RFC 2253 DN, in the order written
    (nginx's $ssl_client_s_dn: the most specific first, CN=...). Escapes
    (``\\,``, ``\\+``, ``\\C3\\A9``) are undone; multi-valued RDNs are split."""
    pairs, text = [], dn or ""
    i, n = 0, len(text)
    while i < n:
        # type
        j = text.find("=", i)
        if j < 0:
            break
        kind = text[i:j].strip()
        i = j + 1
        raw = bytearray()
        while i < n and text[i] not in ",+;":
            char = text[i]
            if char == "\\" and i + 1 < n:
                pair = text[i + 1:i + 3]
                if re.fullmatch(r"[0-9A-Fa-f]{2}", pair):
                    raw.append(int(pair, 16))
                    i += 3
                    continue
                raw.extend(text[i + 1].encode())
                i += 2
                continue
            raw.extend(char.encode())
            i += 1
        pairs.append((kind, raw.decode("utf-8", "replace").strip()))
        i += 1  # the separator
    return pairs


@dataclass(frozen=True)
class Prefill:
    """What the registration form starts with, taken from the certificate."""
    common_name: str  # as in the certificate
    given_name: str
    middle_name: str
    family_name: str
    email: str
    cleaned: bool  # digits, addresses or other junk were left out of the names


def _words(common_name: str) -> tuple[list[str], bool]:
    """The name words of a CN: addresses, words with digits, brackets and
    other non-name characters left out."""
    text = _EMAIL_RE.sub(" ", common_name)
    text = re.sub(r"\([^)]*\)|\[[^\]]*\]", " ", text)
    words, cleaned = [], text != common_name
    for word in re.split(r"[\s_/]+", text):
        word = word.strip(".-'\u2019,;:")
        if not word:
            continue
        if names.name_problem(word) is None:
            words.append(word)
        else:
            cleaned = True
    return words, cleaned


def prefill(certificate: Certificate) -> Prefill:
    """Names from the CN (the first word the given name, the last the family
    name, between them middle names; "Family, Given" read the other way),
    normalised like typed names; the address from the subject's e-mail
    attribute, else one found in the CN."""
    pairs = parse_dn(certificate.subject)
    common = next((v for k, v in pairs if k.lower() in ("cn", "2.5.4.3")), "")
    email = next((v for k, v in pairs if k.lower() in _EMAIL_TYPES and _EMAIL_RE.fullmatch(v)),
                 "")
    if not email:
        found = _EMAIL_RE.search(common)
        email = found.group(0) if found else ""
    family_first = "," in common and not _EMAIL_RE.search(common.split(",", 1)[0])
    if family_first:
        family_part, given_part = common.split(",", 1)
        family, cleaned_family = _words(family_part)
        given_words, cleaned_given = _words(given_part)
        cleaned = cleaned_family or cleaned_given
        given, middle = given_words[:1], given_words[1:]
    else:
        words, cleaned = _words(common)
        given, middle, family = words[:1], words[1:-1], words[-1:] if len(words) > 1 else []
    # Particles before the family name belong to it ('de la Cruz').
    while middle and middle[-1].lower() in names.PARTICLES:
        family = [middle.pop()] + family
    return Prefill(
        common_name=common,
        given_name=names.normalise_name(" ".join(given)),
        middle_name=names.normalise_name(" ".join(middle)),
        family_name=names.normalise_name(" ".join(family)),
        email=email.lower()[:254], cleaned=cleaned)


def usable(subject: str, issuer: str) -> Certificate | None:
    """A Certificate from the terminator's header values, or None when they
    are missing or not plausible DNs."""
    subject, issuer = (subject or "").strip(), (issuer or "").strip()
    for dn in (subject, issuer):
        if not dn or len(dn) > _MAX_DN or not dn.isprintable() or "=" not in dn:
            return None
    return Certificate(subject=subject, issuer=issuer)


class CertificateService:
    def __init__(self, directory: Directory, settings: Settings, clock: Clock = utcnow):
        self._directory = directory
        self._settings = settings
        self._clock = clock

    def login(self, certificate: Certificate) -> LoginResult:
        """Log in with a verified certificate instead of the password: it
        works when its subject and issuer are on an active member's entry.
        An initial password still has to be replaced first, as after a
        password login; a newer version of the conditions accepted."""
        person = self._directory.person_by_certificate(certificate)
        if person is None:
            return LoginResult(LoginOutcome.FAILED)
        if person.status != MemberStatus.ACTIVE:
            return LoginResult(LoginOutcome.NOT_ACTIVE, person.account_name)
        must_accept = person.conditions_version != self._settings.conditions.version
        state = self._directory.password_state(person.account_name)
        outcome = LoginOutcome.MUST_CHANGE if state and state.initial else LoginOutcome.OK
        return LoginResult(outcome, person.account_name, must_accept)

    def add(self, account_name: str, certificate: Certificate, actor: Actor) -> None:
        """A renewed (or another) certificate, presented by the member now."""
        person = self._directory.person(account_name)
        if person is None:
            raise CertificateProblem("unknown member")
        if certificate in person.certificates:
            raise CertificateProblem("already on the entry")
        holder = self._directory.person_by_certificate(certificate)
        if holder is not None and holder.account_name != account_name:
            raise CertificateProblem("another member's certificate")
        self._directory.add_certificate(account_name, certificate, audit_event(
            "member.certificate-added", actor, self._clock(), subject=certificate.subject,
            issuer=certificate.issuer))

    def remove(self, account_name: str, certificate: Certificate, actor: Actor) -> None:
        try:
            self._directory.remove_certificate(account_name, certificate, audit_event(
                "member.certificate-removed", actor, self._clock(),
                subject=certificate.subject, issuer=certificate.issuer))
        except StateConflict as exc:
            raise CertificateProblem("not on the entry") from exc
