"""Never register twice: who may be the same person as an applicant or a
request, and what matched. Checked when a registration is submitted (a
strong match stops it), again when the address is confirmed (recorded), and
on the review page and at approval (a strong match with a member or an
approved request refuses the approval: a second account for one person).

Unconfirmed requests prove nothing (anyone could send one in someone else's
name) and ended ones (rejected, withdrawn) hold nobody: neither stops a
registration. Earlier rejections are shown to the approver with their reason.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum

from flask_babel import lazy_gettext as _l

from ..directory import Directory, EarlierRecord, RequestRecord
from ..mail import Mailer
from ..vocabulary import ENDED_STATUSES, RequestKind, RequestStatus
from . import names
from .errors import PossiblyKnown, SimilarPersonExists, UnknownPreviousAccount
from .links import Links, Page

log = logging.getLogger(__name__)


class MatchReason(StrEnum):
    ADDRESS = "address"  # the same institutional or collaboration address
    CERTIFICATE = "certificate"  # the same certificate subject
    ACCOUNT = "account"  # the account named as held before
    NAME_HERE = "name-here"  # the same name at the same institution
    NAME_ELSEWHERE = "name-elsewhere"  # the same name at another institution


LABELS = {
    MatchReason.ADDRESS: _l("the same e-mail address"),
    MatchReason.CERTIFICATE: _l("the same certificate"),
    MatchReason.ACCOUNT: _l("named as their earlier account"),
    MatchReason.NAME_HERE: _l("the same name at the same institution"),
    MatchReason.NAME_ELSEWHERE: _l("the same name at another institution"),
}
STRONG = (MatchReason.ADDRESS, MatchReason.CERTIFICATE, MatchReason.ACCOUNT,
          MatchReason.NAME_HERE)
# Proof enough that a second account would be for the same person.
CERTAIN = (MatchReason.ADDRESS, MatchReason.CERTIFICATE)


@dataclass(frozen=True)
class Match:
    record: EarlierRecord
    reasons: tuple[MatchReason, ...]

    @property
    def labels(self) -> list[str]:
        """What matched, in words."""
        return [str(LABELS[r]) for r in self.reasons]

    @property
    def strong(self) -> bool:
        return any(r in STRONG for r in self.reasons)

    @property
    def is_member_or_approved(self) -> bool:
        return self.record.is_person or self.record.status == RequestStatus.APPROVED

    @property
    def blocks_approval(self) -> bool:
        """The person has (or is about to get) an account already."""
        return self.is_member_or_approved and any(r in CERTAIN for r in self.reasons)


@dataclass(frozen=True)
class Candidate:
    """Who someone says they are: an application, or a stored request."""
    email: str
    given_name: str
    family_name: str
    institution: str
    previous_account: str = ""
    cert_subject: str = ""


def candidate_of(request: RequestRecord) -> Candidate:
    return Candidate(request.contact_mail, request.given_name, request.family_name,
                     request.institution, request.previous_account, request.cert_subject)


class Duplicates:
    def __init__(self, directory: Directory, mailer: Mailer, links: Links):
        self._directory = directory
        self._mailer = mailer
        self._links = links

    def name_on_record(self, given: str, family: str) -> bool:
        """Someone of this name (either order, folded) is or was known."""
        keys = names.person_keys(given, family)
        return bool(keys) and bool(self._directory.earlier_records(name_keys=keys))

    def matches(self, who: Candidate, *, exclude_dn: str = "",
                include_ended: bool = False) -> list[Match]:
        """People and requests that may be ``who``, with what matched."""
        email = who.email.lower()
        keys = set(names.person_keys(who.given_name, who.family_name))
        previous = who.previous_account
        found = []
        for record in self._directory.earlier_records(
                emails=[email], name_keys=sorted(keys),
                account_names=[previous] if previous else [],
                cert_subjects=[who.cert_subject] if who.cert_subject else []):
            if record.dn.lower() == exclude_dn.lower():
                continue
            if not record.is_person and (record.status == RequestStatus.PENDING_VERIFICATION or (
                    record.status in ENDED_STATUSES and not include_ended)):
                continue
            reasons = []
            if email in (record.contact_mail.lower(), record.mail.lower()):
                reasons.append(MatchReason.ADDRESS)
            if who.cert_subject and who.cert_subject in record.cert_subjects:
                reasons.append(MatchReason.CERTIFICATE)
            if record.is_person and previous and record.account_name == previous:
                reasons.append(MatchReason.ACCOUNT)
            if keys & set(record.name_keys):
                reasons.append(MatchReason.NAME_HERE if record.institution == who.institution
                               else MatchReason.NAME_ELSEWHERE)
            if reasons:
                found.append(Match(record, tuple(reasons)))
        return found

    def check_new(self, who: Candidate, not_me: bool, returning: str = "") -> None:
        """Before a registration is written: stop (PossiblyKnown, the owners
        of the records are mailed) on a strong match, ask
        (SimilarPersonExists) on a weak one; UnknownPreviousAccount when the
        account named as held before does not exist. ``returning``: the
        account the applicant comes back to (its own records do not count)."""
        found = [m for m in self.matches(who)
                 if not (returning and m.record.account_name == returning)]
        if returning:
            return self._stop_on(found, not_me)
        previous = who.previous_account
        if previous and not any(m.record.is_person and m.record.account_name == previous
                                for m in found):
            raise UnknownPreviousAccount(previous)
        self._stop_on(found, not_me)

    def _stop_on(self, found: list[Match], not_me: bool) -> None:
        strong = [m.record for m in found if m.strong]
        if strong:
            self._mail_known_person(strong)
            raise PossiblyKnown()
        if not not_me and found:
            raise SimilarPersonExists()

    def of_request(self, request: RequestRecord) -> list[Match]:
        """Possible duplicates of a registration (none for other kinds: they
        are about an existing member)."""
        if request.kind != RequestKind.REGISTRATION:
            return []
        return [m for m in self.matches(candidate_of(request), exclude_dn=request.dn)
                if not (m.record.is_person and m.record.account_name == request.account_name)]

    def for_review(self, request: RequestRecord) -> tuple[list[Match], list[EarlierRecord]]:
        """``of_request`` and ``earlier_rejections`` from one look-up (the
        review page shows both; the approval decides on the first)."""
        if request.kind != RequestKind.REGISTRATION:
            return [], []
        found = self.matches(candidate_of(request), exclude_dn=request.dn, include_ended=True)
        duplicates = [m for m in found
                      if not (not m.record.is_person and m.record.status in ENDED_STATUSES)
                      and not (m.record.is_person
                               and m.record.account_name == request.account_name)]
        rejections = [m.record for m in found
                      if not m.record.is_person and m.record.status == RequestStatus.REJECTED]
        return duplicates, rejections

    def earlier_rejections(self, request: RequestRecord) -> list[EarlierRecord]:
        """Rejected earlier requests of the same person (address or name)."""
        if request.kind != RequestKind.REGISTRATION:
            return []
        return [m.record for m in self.matches(candidate_of(request), exclude_dn=request.dn,
                                               include_ended=True)
                if not m.record.is_person and m.record.status == RequestStatus.REJECTED]

    def _mail_known_person(self, records: list[EarlierRecord]) -> None:
        """Tell the owners of the matching records (at their stored address)."""
        by_address: dict[str, list] = {}
        for record in records:
            address = record.contact_mail or record.mail
            if address:
                by_address.setdefault(address.lower(), []).append(record)
        for address, mine in by_address.items():
            language = next((r.language for r in mine if r.language), "")
            self._mailer.send("known_person", [address], language, records=mine,
                              reset_link=self._links.page(Page.PASSWORD_RESET),
                              reactivate_link=self._links.page(Page.REACTIVATION))
        log.info("registration stopped: earlier records", extra={
            "event": "request.duplicate", "records": len(records)})
