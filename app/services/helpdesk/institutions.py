"""The helpdesk's pages of institutions: created and edited, given
representatives and deputies, imported from CSV; and the member list
exported as CSV."""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from typing import Iterator

from flask_babel import lazy_gettext as _l

from ...clock import Clock, utcnow
from ...directory import Directory, EntryExists, Institution, Person
from ...settings import Settings
from ...vocabulary import MemberStatus
from ..audit import Actor, audit_event
from ..institutions import InstitutionCatalog
from ..review import Reviewers
from .common import HelpdeskRefused, HistoryRow, given_reason, history

COUNTRY_RE = re.compile(r"^[A-Z]{2}$")
INSTITUTION_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,31}$")
MAX_IMPORT_LINES = 2000
# Spreadsheets run a cell starting with one of these as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
EXPORT_COLUMNS = ("account_name", "given_name", "middle_name", "family_name", "mail",
                  "institution", "category", "status", "member_since", "member_until")


@dataclass(frozen=True)
class InstitutionFile:
    institution: Institution
    representatives: list[Person]  # active ones and not (the page says which)
    history: list[HistoryRow]
    deputies: tuple[Person, ...] = ()  # asked too once a request waits too long


@dataclass(frozen=True)
class ImportLine:
    number: int
    institution_id: str
    name: str
    country: str
    action: str  # "create", "update", "unchanged" or "" (a problem)
    problem: str = ""


def safe_cell(value: str) -> str:
    """A CSV cell a spreadsheet shows as text, never runs as a formula (OWASP)."""
    value = str(value or "")
    return "'" + value if value.startswith(_FORMULA_START) else value


@dataclass(frozen=True)
class _InstitutionRole:
    name: str  # the gateway's add_<name>/remove_<name>, the record's <name>_dns
    not_active: object  # what the helpdesk is told
    not_named: object


_REPRESENTATIVE = _InstitutionRole(
    "representative",
    _l("A representative is an active member: give their account name."),
    _l("This person is not a representative of the institution."))
_DEPUTY = _InstitutionRole(
    "deputy",
    _l("A deputy is an active member: give their account name."),
    _l("This person is not a deputy of the institution."))


class HelpdeskInstitutions:
    """Institutions created, edited, given representatives and imported by
    the helpdesk; the member list exported. Every change is audited (on the
    institution, and on the person named or removed as representative) and
    the institutions' cache of this process is emptied at once."""

    def __init__(self, directory: Directory, settings: Settings, reviewers: Reviewers,
                 institutions: InstitutionCatalog, clock: Clock = utcnow):
        self._directory = directory
        self._settings = settings
        self._reviewers = reviewers
        self._institutions = institutions
        self._clock = clock

    def all(self) -> list[Institution]:
        return self._directory.institutions()

    def file(self, institution_id: str) -> InstitutionFile | None:
        institution = self._directory.institution(institution_id)
        if institution is None:
            return None
        people = [self._directory.person_by_dn(dn) for dn in institution.representative_dns]
        deputies = [self._directory.person_by_dn(dn) for dn in institution.deputy_dns]
        audit = self._directory.institution_audit(institution_id)
        return InstitutionFile(institution, [p for p in people if p is not None],
                               history(self._directory, audit, "", ""),
                               tuple(p for p in deputies if p is not None))

    def _check(self, institution_id: str, name: str, country: str) -> str:
        if not INSTITUTION_ID_RE.match(institution_id or ""):
            return str(_l("The short id has 2-32 lowercase letters, digits and hyphens."))
        if not (name or "").strip() or len(name) > 200:
            return str(_l("Give the institution's name."))
        if country and not COUNTRY_RE.match(country):
            return str(_l("The country is a two-letter code such as DE or JP."))
        return ""

    def _audit(self, institution_id: str, action: str, actor: Actor, reason: str,
               **details) -> None:
        self._directory.add_institution_audit(institution_id, audit_event(
            action, actor, self._clock(), reason=reason, **details))
        self._institutions.invalidate()

    def create(self, institution_id: str, name: str, country: str, reason: str,
               actor: Actor) -> None:
        reason = given_reason(reason)
        problem = self._check(institution_id, name, country)
        if problem:
            raise HelpdeskRefused(problem)
        try:
            self._directory.add_institution(institution_id, name.strip(), country)
        except EntryExists as exc:
            raise HelpdeskRefused(str(_l("An institution with this short id exists."))) from exc
        self._audit(institution_id, "institution.created", actor, reason, name=name.strip())

    def edit(self, institution_id: str, name: str, country: str, reason: str,
             actor: Actor) -> None:
        reason = given_reason(reason)
        problem = self._check(institution_id, name, country)
        if problem or self._directory.institution(institution_id) is None:
            raise HelpdeskRefused(problem or str(_l("There is no such institution.")))
        self._directory.update_institution(institution_id, name.strip(), country)
        self._audit(institution_id, "institution.changed", actor, reason, name=name.strip(),
                    country=country)

    # Representatives and their deputies: one way to name and remove either.
    def add_representative(self, institution_id: str, account_name: str, reason: str,
                           actor: Actor) -> None:
        self._name(_REPRESENTATIVE, institution_id, account_name, reason, actor)

    def remove_representative(self, institution_id: str, account_name: str, reason: str,
                              actor: Actor) -> None:
        self._unname(_REPRESENTATIVE, institution_id, account_name, reason, actor)

    def add_deputy(self, institution_id: str, account_name: str, reason: str,
                   actor: Actor) -> None:
        self._name(_DEPUTY, institution_id, account_name, reason, actor)

    def remove_deputy(self, institution_id: str, account_name: str, reason: str,
                      actor: Actor) -> None:
        self._unname(_DEPUTY, institution_id, account_name, reason, actor)

    def _name(self, role: _InstitutionRole, institution_id: str, account_name: str,
              reason: str, actor: Actor) -> None:
        reason = given_reason(reason)
        person = self._directory.person(account_name)
        if self._directory.institution(institution_id) is None:
            raise HelpdeskRefused(str(_l("There is no such institution.")))
        if person is None or person.status != MemberStatus.ACTIVE:
            raise HelpdeskRefused(str(role.not_active))
        getattr(self._directory, f"add_{role.name}")(institution_id, person.dn)
        self._record(role, "added", institution_id, person, reason, actor)

    def _unname(self, role: _InstitutionRole, institution_id: str, account_name: str,
                reason: str, actor: Actor) -> None:
        reason = given_reason(reason)
        institution = self._directory.institution(institution_id)
        person = self._directory.person(account_name)
        named = getattr(institution, f"{role.name}_dns", ()) if institution else ()
        if person is None or person.dn.lower() not in {d.lower() for d in named}:
            raise HelpdeskRefused(str(role.not_named))
        getattr(self._directory, f"remove_{role.name}")(institution_id, person.dn)
        self._record(role, "removed", institution_id, person, reason, actor)

    def _record(self, role: _InstitutionRole, what: str, institution_id: str,
                person: Person, reason: str, actor: Actor) -> None:
        """Audited on the institution and in the person's history."""
        self._audit(institution_id, f"institution.{role.name}-{what}", actor, reason,
                    account=person.account_name)
        self._directory.add_person_audit(person.account_name, audit_event(
            f"member.{role.name}-{what}", actor, self._clock(), reason=reason,
            institution=institution_id))

    # -- CSV import -------------------------------------------------------------------------

    def check_import(self, text: str) -> list[ImportLine]:
        """Each line of ``id,name,country`` judged before anything is written
        (a first line ``id,name,country`` is a header)."""
        existing = {i.id: i for i in self._directory.institutions()}
        lines, seen = [], set()
        rows = list(csv.reader(io.StringIO(text or "")))
        if len(rows) > MAX_IMPORT_LINES:
            return [ImportLine(0, "", "", "", "", str(_l(
                "At most %(n)d lines at a time.", n=MAX_IMPORT_LINES)))]
        for number, row in enumerate(rows, start=1):
            cells = [c.strip() for c in row]
            if not any(cells) or cells[:1] == ["id"] and number == 1:
                continue
            if len(cells) not in (2, 3):
                lines.append(ImportLine(number, cells[0] if cells else "", "", "", "", str(_l(
                    "Expected: id, name, country."))))
                continue
            institution_id, name = cells[0].lower(), cells[1]
            country = cells[2].upper() if len(cells) == 3 else ""
            problem = self._check(institution_id, name, country)
            if not problem and institution_id in seen:
                problem = str(_l("This id came on an earlier line."))
            seen.add(institution_id)
            old = existing.get(institution_id)
            action = "" if problem else "create" if old is None else \
                "unchanged" if (old.name, old.country) == (name, country) else "update"
            lines.append(ImportLine(number, institution_id, name, country, action, problem))
        return lines

    def run_import(self, text: str, reason: str, actor: Actor) -> list[ImportLine]:
        """Write the lines of a clean check (nothing when any line has a problem)."""
        reason = given_reason(reason)
        lines = self.check_import(text)
        if not lines or any(line.problem for line in lines):
            raise HelpdeskRefused(str(_l("Nothing was imported: correct the lines marked "
                                         "below first.")))
        for line in lines:
            if line.action == "create":
                self._directory.add_institution(line.institution_id, line.name, line.country)
                self._audit(line.institution_id, "institution.created", actor, reason,
                            name=line.name, source="csv")
            elif line.action == "update":
                self._directory.update_institution(line.institution_id, line.name,
                                                   line.country)
                self._audit(line.institution_id, "institution.changed", actor, reason,
                            name=line.name, country=line.country, source="csv")
        return lines

    # -- the member list --------------------------------------------------------------------

    def export_members(self, status: str = "", institution: str = "",
                       category: str = "") -> Iterator[str]:
        """The member list as CSV lines (a header first), safe to open in a spreadsheet."""
        status = status if status in {s.value for s in MemberStatus if s.value} else ""
        institution = institution if self._institutions.get(institution) else ""
        category = category if category in {c.key for c in self._settings.categories} else ""
        buffer = io.StringIO()
        writer = csv.writer(buffer)

        def line(cells) -> str:
            buffer.seek(0)
            buffer.truncate()
            writer.writerow([safe_cell(c) for c in cells])
            return buffer.getvalue()

        yield line(EXPORT_COLUMNS)
        for person in self._directory.members_for_export(status, institution, category):
            values = []
            for column in EXPORT_COLUMNS:
                value = getattr(person, column)
                values.append(value.date().isoformat() if hasattr(value, "date") else value)
            yield line(values)
