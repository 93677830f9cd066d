"""The collaboration's members list (seed 002: "your e-mail address is
consistent with the Belle II members list"): the helpdesk imports it from a
CSV file (``flask members-list import FILE.csv``; each import replaces the
list before), and the review page says when a request's address or
certificate is on it."""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

from ..clock import Clock, utcnow
from ..directory import Directory, ListedMember
from .errors import ServiceError

COLUMNS = ("email", "given", "family", "institution", "certificate")
_EMAIL_RE = re.compile(r"^[^@\s,;<>\"']+@[^@\s,;<>\"']+\.[^@\s,;<>\"']+$")


class MembersListRefused(ServiceError):
    """The file has broken lines: nothing was imported."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class ImportResult:
    imported: int
    before: int


def parse_members_list(text: str) -> list[ListedMember]:
    """The rows of a members-list CSV (a first line naming the columns is
    skipped); MembersListRefused lists every broken line by number."""
    rows, problems, seen = [], [], {}
    for number, cells in enumerate(csv.reader(io.StringIO(text)), start=1):
        cells = [c.strip() for c in cells]
        if not any(cells):
            continue
        if number == 1 and cells[0].lower() == "email":
            continue
        if len(cells) not in (4, 5):
            problems.append(f"line {number}: expected 4 or 5 columns ({', '.join(COLUMNS)}), "
                            f"found {len(cells)}")
            continue
        email, given, family, institution = cells[:4]
        certificate = cells[4] if len(cells) == 5 else ""
        if not _EMAIL_RE.match(email) or len(email) > 254:
            problems.append(f"line {number}: {email!r} is not an e-mail address")
        elif not (given and family and institution):
            problems.append(f"line {number}: given name, family name and institution are "
                            "required")
        elif certificate and ("=" not in certificate or len(certificate) > 1024
                              or not certificate.isprintable()):
            problems.append(f"line {number}: {certificate!r} is not a certificate DN "
                            "(like CN=Toru Iijima,O=KEK,C=JP)")
        elif email.lower() in seen:
            problems.append(f"line {number}: {email} is on line {seen[email.lower()]} already")
        else:
            seen[email.lower()] = number
            rows.append(ListedMember(email.lower(), given, family, institution, certificate))
    if problems:
        raise MembersListRefused(problems)
    return rows


class MembersListService:
    def __init__(self, directory: Directory, clock: Clock = utcnow):
        self._directory = directory
        self._clock = clock

    def import_csv(self, text: str) -> ImportResult:
        """Replace the list with the file's rows (nothing changes when a line is broken)."""
        rows = parse_members_list(text)
        before, _ = self._directory.members_list()
        self._directory.replace_members_list(rows, self._clock())
        return ImportResult(imported=len(rows), before=len(before))

    def listed(self) -> list[ListedMember]:
        return self._directory.members_list()[0]
