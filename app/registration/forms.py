"""The registration form and its validation rules."""
from __future__ import annotations

import re
from enum import Enum

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, ValidationError

from ..portal import portal
from ..services import names
from ..services.passwords import password_problems
from ..services.registration import Application
from ..vocabulary import ACCOUNT_NAME_RE
from ..web.widgets import SelectField

# ASCII only (portalContactMail is an IA5 string; internationalised addresses
# are rare at institutes), a local part of at most 64 characters.
EMAIL_RE = re.compile(r"^[a-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}"
                      r"@([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}$")
MAX_NAME_LENGTH = 64


class AccountNameProblem(Enum):
    """Why an account name cannot be had, in the order it is checked."""
    EMAIL = "email"
    LENGTH = "length"
    FORMAT = "format"
    RESERVED = "reserved"
    TAKEN = "taken"


def account_name_problem(value: str) -> AccountNameProblem | None:
    """What stands against an account name (None: it is free); used by the
    form and by the live hints."""
    if "@" in value:
        return AccountNameProblem.EMAIL
    if not 4 <= len(value) <= 8:
        return AccountNameProblem.LENGTH
    if not ACCOUNT_NAME_RE.match(value):
        return AccountNameProblem.FORMAT
    registration = portal().registration
    if registration.account_name_reserved(value):
        return AccountNameProblem.RESERVED
    if registration.account_name_taken(value):
        return AccountNameProblem.TAKEN
    return None


# The rule itself is the field's description, shown once; a message names
# what is wrong. The live hints give the same messages.
ACCOUNT_NAME_MESSAGES = {
    AccountNameProblem.EMAIL: _l("The account name is not an e-mail address: choose a short "
                                 "name such as the suggestions below."),
    AccountNameProblem.LENGTH: _l("This account name is too short or too long."),
    AccountNameProblem.FORMAT: _l("This account name has a character that is not allowed."),
    AccountNameProblem.RESERVED: _l("This account name is reserved. Please choose another."),
    AccountNameProblem.TAKEN: _l("This account name is already taken. Please choose another."),
}

NAME_MESSAGES = {
    names.NameProblem.EMAIL: _l("An e-mail address does not belong in a name field."),
    names.NameProblem.DIGITS: _l("Names cannot contain digits."),
    names.NameProblem.CHARACTERS: _l("Names can contain letters, spaces, hyphens, apostrophes "
                                     "and dots only."),
    names.NameProblem.NO_LETTER: _l("A name needs at least one letter."),
    names.NameProblem.NOT_LATIN: _l("Please write this name in Latin letters (accents are "
                                    "fine): the collaboration mail address and the directory "
                                    "entry are made from it."),
}

SWAPPED_MESSAGE = _l("Given and family name look swapped. The given name is your first name "
                     "(for example Toru), the family name your last name (Iijima). Correct "
                     "them or confirm below that they are right.")


def name_messages(given: str, middle: str, family: str) -> dict[str, str]:
    """field name -> what is wrong with it: the form's rule and the live hints'."""
    problems = {field: names.name_problem(value) for field, value in
                (("given_name", given), ("middle_name", middle), ("family_name", family))}
    return {field: str(NAME_MESSAGES[p]) for field, p in problems.items() if p}


def _lower(value):
    return value.strip().lower() if isinstance(value, str) else value


def _name(value):
    return names.normalise_name(value) if isinstance(value, str) else value


def webmail_domain(address: str, domains: tuple[str, ...]) -> bool:
    """True when the address is at a configured webmail domain or below it.

    "yahoo.*" stands for yahoo under any public suffix of one or two short
    labels (yahoo.fr, yahoo.co.uk, mail.yahoo.com), not for any domain that
    happens to contain a "yahoo" label (yahoo.example.edu).
    """
    domain = address.rsplit("@", 1)[-1].lower()
    labels = domain.split(".")
    for entry in domains:
        if entry.endswith(".*"):
            stem = entry[:-2]
            for index, label in enumerate(labels):
                suffix = labels[index + 1:]
                if label == stem and 1 <= len(suffix) <= 2 and all(len(s) <= 3 for s in suffix):
                    return True
        elif domain == entry or domain.endswith("." + entry):
            return True
    return False


class RegistrationForm(FlaskForm):
    account_name = StringField(
        _l("Account name"), filters=[_lower],
        validators=[DataRequired(_l("Choose an account name."))],
        description=_l("4-8 characters: lowercase letters and digits, starting with a letter. "
                       "It can never be changed."))
    given_name = StringField(_l("Given name"), filters=[_name], validators=[
        DataRequired(_l("Enter your given (first) name.")), Length(max=MAX_NAME_LENGTH)])
    middle_name = StringField(_l("Middle name (optional)"), filters=[_name],
                              validators=[Length(max=MAX_NAME_LENGTH)])
    family_name = StringField(_l("Family name"), filters=[_name], validators=[
        DataRequired(_l("Enter your family (last) name.")), Length(max=MAX_NAME_LENGTH)])
    email = EmailField(
        _l("E-mail address at your institution"), filters=[_lower],
        validators=[DataRequired(_l("Enter your e-mail address.")), Length(max=254)])
    institution = SelectField(_l("Home institution"), validate_choice=False)
    category = SelectField(_l("Category"), validate_choice=False)
    password = PasswordField(_l("Initial password"), validators=[
        DataRequired(_l("Choose an initial password."))])
    password_confirm = PasswordField(_l("Repeat the password"), validators=[
        DataRequired(_l("Repeat the password.")),
        EqualTo("password", _l("The two passwords are not the same."))])
    accept_conditions = BooleanField(_l("I have read and accept the conditions of use"),
                                     validators=[DataRequired(
                                         _l("You must accept the conditions of use to register."))])
    names_confirmed = BooleanField(_l("Yes, my given and family names are in the right order"))
    previous_account = StringField(
        _l("I had an account before (optional)"), filters=[_lower],
        validators=[Length(max=64)],
        description=_l("If you hold or held an account of the collaboration or of the host "
                       "laboratory, give its account name: it is reactivated instead of "
                       "creating a second one."))
    not_me = BooleanField(_l("This is not me: I never had an account"))

    def __init__(self, *args, institutions=(), categories=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.institution.choices = [("", _l("Choose your home institution"))] + [
            (i.id, i.name) for i in institutions]
        self.category.choices = [("", _l("Choose your category"))] + [
            (c.key, c.label) for c in categories]
        self.show_names_confirmation = False
        self.directory_down = False
        self.show_not_me = False

    def application(self, **given) -> Application:
        """What was filled in, as the services take it (``given``: what the
        route adds or fixes, such as the certificate or the mails' language)."""
        fields = dict(
            account_name=self.account_name.data, given_name=self.given_name.data,
            middle_name=self.middle_name.data or "", family_name=self.family_name.data,
            email=self.email.data, institution=self.institution.data,
            category=self.category.data,
            password=self.password.data if self.password is not None else "",
            conditions_version=portal().settings.conditions.version,
            previous_account=(self.previous_account.data or "")
            if self.previous_account is not None else "",
            not_me=bool(self.not_me.data))
        return Application(**{**fields, **given})

    # What the services' refusals say on the form (AccountNameUnavailable,
    # UnknownPreviousAccount), the same on every route.
    def name_taken(self) -> None:
        self.account_name.errors = [_("This account name was taken a moment ago. "
                                      "Please choose another.")]

    def previous_account_unknown(self) -> None:
        self.previous_account.errors = [_(
            "We have no account with this name. Check it, or leave the field empty if "
            "you never had one.")]

    # -- field rules ---------------------------------------------------------------

    def validate_account_name(self, field):
        problem = account_name_problem(field.data or "")
        if problem is not None:
            raise ValidationError(ACCOUNT_NAME_MESSAGES[problem])

    def validate_previous_account(self, field):
        if field.data and not ACCOUNT_NAME_RE.match(field.data):
            raise ValidationError(_l("An account name has 4-8 lowercase letters and digits, "
                                     "starting with a letter."))

    def _check_name(self, field):
        problem = names.name_problem(field.data or "")
        if problem:
            raise ValidationError(NAME_MESSAGES[problem])

    validate_given_name = _check_name
    validate_middle_name = _check_name
    validate_family_name = _check_name

    def validate_email(self, field):
        value = field.data or ""
        if not EMAIL_RE.match(value):
            raise ValidationError(_l("Enter a complete e-mail address, like name@institute.org."))
        if webmail_domain(value, portal().settings.webmail_domains):
            raise ValidationError(_l(
                "Please use your address at your home institution: mail to webmail providers "
                "is often filtered or lost, and the address identifies your institution."))

    def validate_institution(self, field):
        if field.data not in {key for key, _ in field.choices if key}:
            raise ValidationError(_l("Choose your home institution from the list."))

    def validate_category(self, field):
        if field.data not in {key for key, _ in field.choices if key}:
            raise ValidationError(_l("Choose a category from the list."))

    def validate_password(self, field):
        problems = password_problems(
            field.data or "", portal().settings.password_min_length,
            account_name=self.account_name.data or "",
            name_parts=(self.given_name.data or "", self.middle_name.data or "",
                        self.family_name.data or ""),
            other_inputs=((self.email.data or "").split("@")[0],),
        )
        if problems:
            raise ValidationError(" ".join(str(p) for p in problems))

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        # As typed: normalisation hides the capitals of 'IIJIMA Toru'.
        typed_given = (self.given_name.raw_data or [""])[0]
        typed_family = (self.family_name.raw_data or [""])[0]
        if names.looks_swapped(typed_given, typed_family) and not self.names_confirmed.data:
            self.show_names_confirmation = True
            self.given_name.errors = list(self.given_name.errors) + [SWAPPED_MESSAGE]
            valid = False
        return valid


class StatusActionForm(FlaskForm):
    """A button of the status page (resend, withdraw): the CSRF token only."""
