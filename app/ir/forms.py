"""The IR console's forms."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from ..clock import utcnow
from ..web.widgets import SelectField

# As LifecycleService checks it again (MAX_MEMBER_UNTIL_YEARS).
MAX_DAYS_AHEAD = 366 * 10


def _strip(value):
    return value.strip() if isinstance(value, str) else value


def check_member_until(value) -> None:
    """A member-until date either console may set (the IR's and the helpdesk's)."""
    today = utcnow().date()
    if value < today:
        raise ValidationError(_l("The date cannot be in the past."))
    if (value - today).days > MAX_DAYS_AHEAD:
        raise ValidationError(_l("The date can be at most ten years ahead."))


class RosterFilterForm(FlaskForm):
    """The roster's filters (GET: no CSRF token, changes nothing)."""
    class Meta:
        csrf = False

    institution = SelectField(_l("Institution"), validators=[Optional()], validate_choice=False)
    status = SelectField(_l("Status"), validators=[Optional()])
    category = SelectField(_l("Category"), validators=[Optional()])


class EndMembershipForm(FlaskForm):
    reason = TextAreaField(
        _l("Reason (sent to the member)"), filters=[_strip],
        validators=[DataRequired(_l("Give the reason: the member reads it.")),
                    Length(max=2000)])


class UndoEndForm(FlaskForm):
    reason = TextAreaField(_l("Reason (optional)"), filters=[_strip],
                           validators=[Optional(), Length(max=2000)])


class MemberUntilForm(FlaskForm):
    until = DateField(_l("Member until"), validators=[DataRequired(_l("Give a date."))])
    reason = TextAreaField(_l("Reason (optional)"), filters=[_strip],
                           validators=[Optional(), Length(max=2000)])

    def validate_until(self, field):
        check_member_until(field.data)


class ConfirmRosterForm(FlaskForm):
    reason = TextAreaField(
        _l("Reason for those who leave (sent to them)"), filters=[_strip],
        validators=[Optional(), Length(max=2000)])
