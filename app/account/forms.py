"""Login, password change and lost-password forms."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, Regexp, ValidationError

from ..registration.forms import EMAIL_RE
from ..web.widgets import SelectField


def _strip_lower(value):
    return value.strip().lower() if isinstance(value, str) else value


class LoginForm(FlaskForm):
    account_name = StringField(_l("Account name"), filters=[_strip_lower], validators=[
        DataRequired(_l("Enter your account name.")), Length(max=64)],
        description=_l("Your account name, not your e-mail address."))
    password = PasswordField(_l("Password"), validators=[
        DataRequired(_l("Enter your password.")), Length(max=1024)])


class NewPasswordForm(FlaskForm):
    """A new password twice, checked against the member's own rules."""
    password = PasswordField(_l("New password"), validators=[
        DataRequired(_l("Choose a new password."))])
    password_confirm = PasswordField(_l("Repeat the new password"), validators=[
        DataRequired(_l("Repeat the new password.")),
        EqualTo("password", _l("The two passwords are not the same."))])

    def __init__(self, *args, strength_check=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._strength_check = strength_check

    def validate_password(self, field):
        problems = self._strength_check(field.data or "") if self._strength_check else []
        if problems:
            raise ValidationError(" ".join(str(p) for p in problems))


class ChangePasswordForm(NewPasswordForm):
    current_password = PasswordField(_l("Current password"), validators=[
        DataRequired(_l("Enter your current password.")), Length(max=1024)])


class ConditionsForm(FlaskForm):
    accept_conditions = BooleanField(
        _l("I have read and accept the conditions of use"),
        validators=[DataRequired(_l("You must accept the conditions of use to go on."))])


class MoveForm(FlaskForm):
    institution = SelectField(_l("Move to"), validate_choice=False)

    def __init__(self, *args, institutions=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.institution.choices = [("", _l("Choose the new institution"))] + [
            (i.id, i.name) for i in institutions]

    def validate_institution(self, field):
        if field.data not in {key for key, _ in field.choices if key}:
            raise ValidationError(_l("Choose an institution from the list."))


class CategoryForm(FlaskForm):
    category = SelectField(_l("Ask for the category"), validate_choice=False)

    def __init__(self, *args, categories=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.category.choices = [("", _l("Choose your category"))] + [
            (c.key, c.label) for c in categories]


class AddressForm(FlaskForm):
    email = StringField(_l("New institutional e-mail address"), filters=[_strip_lower],
                        validators=[DataRequired(_l("Enter the new address.")), Length(max=254),
                                    Regexp(EMAIL_RE, message=_l(
                                        "This is not an e-mail address."))])


class NamesForm(FlaskForm):
    given_name = StringField(_l("Given name"), validators=[
        DataRequired(_l("Enter your given name.")), Length(max=64)])
    middle_name = StringField(_l("Middle name (optional)"), validators=[Length(max=64)])
    family_name = StringField(_l("Family name"), validators=[
        DataRequired(_l("Enter your family name.")), Length(max=64)])


class ResetRequestForm(FlaskForm):
    login = StringField(_l("Account name or e-mail address"), filters=[_strip_lower],
                        validators=[DataRequired(_l("Enter your account name or e-mail address.")),
                                    Length(max=254)])
