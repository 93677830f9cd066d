"""The invitation console's forms, and reading the IR's list of invitees
(one address per line, or CSV lines ``address, given name, family name,
category``, typed or uploaded) with the registration form's rules."""
from __future__ import annotations

import csv
from dataclasses import dataclass, replace
from enum import Enum

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import HiddenField, TextAreaField
from wtforms.validators import Length

from ..portal import portal
from ..registration.forms import EMAIL_RE, MAX_NAME_LENGTH, webmail_domain
from ..services import names
from ..services.invitations import MAX_INVITEES, Invitee
from ..web.widgets import SelectField

MAX_TEXT = 60_000  # characters of the list (typed and uploaded together)


class LineProblem(Enum):
    COLUMNS = "columns"
    FORMAT = "format"
    WEBMAIL = "webmail"
    NAME = "name"
    CATEGORY = "category"
    TOO_MANY = "too-many"


LINE_MESSAGES = {
    LineProblem.COLUMNS: _l("Expected an address, or: address, given name, family name and "
                            "optionally a category (separated by commas)."),
    LineProblem.FORMAT: _l("This is not a complete e-mail address (like name@institute.org)."),
    LineProblem.WEBMAIL: _l("A webmail address: invite the person at their address at the "
                            "institution, as the registration requires."),
    LineProblem.NAME: _l("A name has characters a name cannot have (digits, an address, "
                         "letters that are not Latin)."),
    LineProblem.CATEGORY: _l("Unknown category: use one of the category keys below, or leave "
                             "it empty."),
    LineProblem.TOO_MANY: _l("Too many lines at once: invite at most %(n)d people per list.",
                             n=MAX_INVITEES),
}


@dataclass(frozen=True)
class Line:
    """One line of the list: what was typed, and the invitee or the problem."""
    number: int
    text: str
    invitee: Invitee | None = None
    problem: LineProblem | None = None
    in_file: bool = False  # a line of the uploaded file (numbered in the file)


def _looks_like_header(fields: list[str]) -> bool:
    return bool(fields) and fields[0].strip().lower() in ("email", "e-mail", "address", "mail")


def read_lines(text: str, default_category: str = "", in_file: bool = False) -> list[Line]:
    """Every non-empty line, numbered as typed; a header line (email, ...)
    and lines starting with # are skipped."""
    categories = {c.key for c in portal().settings.categories}
    webmail = portal().settings.webmail_domains
    lines: list[Line] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.replace("\ufeff", "").strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            fields = [f.strip() for f in next(csv.reader([stripped], skipinitialspace=True))]
        except (csv.Error, StopIteration):
            fields = []
        if not lines and _looks_like_header(fields):
            continue
        line = _line(number, stripped, fields, categories, webmail, default_category)
        lines.append(replace(line, in_file=in_file))
    return capped(lines)


def capped(lines: list[Line]) -> list[Line]:
    """Lines after the MAX_INVITEES-th to be invited are refused."""
    result, count = [], 0
    for line in lines:
        if line.invitee is not None:
            count += 1
            if count > MAX_INVITEES:
                line = replace(line, invitee=None, problem=LineProblem.TOO_MANY)
        result.append(line)
    return result


def _line(number, text, fields, categories, webmail, default_category) -> Line:
    if len(fields) not in (1, 3, 4):  # the category may be left out (the default then)
        return Line(number, text, problem=LineProblem.COLUMNS)
    email = fields[0].lower()
    if len(email) > 254 or not EMAIL_RE.match(email):
        return Line(number, text, problem=LineProblem.FORMAT)
    if webmail_domain(email, webmail):
        return Line(number, text, problem=LineProblem.WEBMAIL)
    given = family = ""
    category = default_category
    if len(fields) >= 3:
        given, family = names.normalise_name(fields[1]), names.normalise_name(fields[2])
        if any(len(n) > MAX_NAME_LENGTH or (n and names.name_problem(n))
               for n in (given, family)):
            return Line(number, text, problem=LineProblem.NAME)
        category = (fields[3] if len(fields) == 4 else "") or default_category
    if category and category not in categories:
        return Line(number, text, problem=LineProblem.CATEGORY)
    return Line(number, text, Invitee(email, given, family, category))


class InvitationForm(FlaskForm):
    """The list of invitees: typed, uploaded, or both."""
    emails = TextAreaField(
        _l("People to invite"), validators=[Length(max=MAX_TEXT)],
        description=_l("One address per line, or per line: address, given name, family "
                       "name, category (the names and the category are filled in for the "
                       "invitee, who can correct the names)."))
    csv_file = FileField(_l("Or upload a CSV file with the same columns"))
    category = SelectField(_l("Category (unless a line gives one)"), validate_choice=False)
    institution = SelectField(_l("Institution they are invited to"), validate_choice=False)

    def __init__(self, *args, institutions=(), categories=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.institution.choices = [(i.id, i.name) for i in institutions]
        self.category.choices = [("", _l("None: the invitee chooses"))] + [
            (c.key, c.label) for c in categories]

    def validate_institution(self, field):
        from wtforms.validators import ValidationError
        if field.data not in {key for key, _ in field.choices}:
            raise ValidationError(_l("Choose one of the institutions you represent."))

    def validate_category(self, field):
        from wtforms.validators import ValidationError
        if field.data and field.data not in {key for key, _ in field.choices if key}:
            raise ValidationError(_l("Choose a category from the list."))


class ConfirmForm(FlaskForm):
    """The previewed list, sent again to invite (checked again on the server)."""
    emails = HiddenField(validators=[Length(max=MAX_TEXT)])
    category = HiddenField()
    institution = HiddenField()


class ActionForm(FlaskForm):
    """Resend or revoke: a POST with the CSRF token and nothing else."""
