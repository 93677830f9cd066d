"""The helpdesk's forms: a reason for every action, the changes of a
member's record, and the paper registration (the registration form's
fields and rules, without passwords, plus who checked the signed form)."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import DateField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from ..ir.forms import check_member_until
from ..registration.forms import RegistrationForm
from ..web.widgets import SelectField


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class ReasonForm(FlaskForm):
    reason = TextAreaField(_l("Reason (recorded in the history)"), filters=[_strip],
                           validators=[DataRequired(_l("Give a reason: it is recorded in the "
                                                       "history.")), Length(max=1000)])


class MemberUntilForm(ReasonForm):
    """Extend or set member-until (the IR console's rule for the date)."""
    until = DateField(_l("Member until"), validators=[DataRequired(_l("Give a date."))])

    def validate_until(self, field):
        check_member_until(field.data)


class CategoryChangeForm(ReasonForm):
    category = SelectField(_l("New category"), validate_choice=False)

    def __init__(self, *args, categories=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.category.choices = [(c.key, c.label) for c in categories]


class InstitutionChangeForm(ReasonForm):
    institution = SelectField(_l("New institution"), validate_choice=False)

    def __init__(self, *args, institutions=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.institution.choices = [(i.id, i.name) for i in institutions]


class PaperForm(RegistrationForm):
    """The signed paper form, typed in: the registration's fields and rules
    (names, account name, address, institution, category), no password."""
    password = None
    password_confirm = None
    accept_conditions = None
    previous_account = None
    verified_by = StringField(
        _l("Signed form checked by"), filters=[_strip],
        validators=[DataRequired(_l("Say who checked the signed paper form.")),
                    Length(max=200)],
        description=_l("Who checked the signature of the institute representative on the "
                       "paper form."))
    note = TextAreaField(_l("Note (optional)"), filters=[_strip], validators=[Length(max=2000)])
    language = SelectField(_l("Language of the applicant's mails"), validate_choice=False)

    def __init__(self, *args, languages=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.language.choices = list(languages)


class InstitutionForm(ReasonForm):
    institution_id = StringField(_l("Short id"), filters=[_strip],
                                 validators=[DataRequired(_l("Give the short id.")),
                                             Length(max=32)],
                                 description=_l("Lowercase letters, digits and hyphens, "
                                                "for example desy. It cannot be changed."))
    name = StringField(_l("Name"), filters=[_strip],
                       validators=[DataRequired(_l("Give the institution's name.")),
                                   Length(max=200)])
    country = StringField(_l("Country (two letters, optional)"),
                          filters=[lambda v: v.strip().upper() if isinstance(v, str) else v],
                          validators=[Length(max=2)])


class RepresentativeForm(ReasonForm):
    account_name = StringField(_l("Account name of the representative"),
                               filters=[lambda v: v.strip().lower() if isinstance(v, str) else v],
                               validators=[DataRequired(_l("Give the account name.")),
                                           Length(max=8)])


class ImportForm(ReasonForm):
    lines = TextAreaField(_l("Institutions as CSV: id, name, country"),
                          validators=[Length(max=200_000)])
    csv_file = FileField(_l("Or a CSV file"))
