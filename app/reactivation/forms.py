"""Reactivation forms."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length, ValidationError

from ..web.widgets import SelectField


def _strip_lower(value):
    return value.strip().lower() if isinstance(value, str) else value


class _InstitutionMixin:
    def validate_institution(self, field):
        if field.data not in {key for key, _ in field.choices if key}:
            raise ValidationError(_l("Choose your home institution from the list."))


def _institution_choices(institutions):
    return [("", _l("Choose your home institution"))] + [(i.id, i.name) for i in institutions]


class ReactivationRequestForm(_InstitutionMixin, FlaskForm):
    login = StringField(_l("Account name or e-mail address"), filters=[_strip_lower],
                        validators=[DataRequired(_l("Enter your account name or e-mail address.")),
                                    Length(max=254)])
    institution = SelectField(_l("Your home institution now"), validate_choice=False)

    def __init__(self, *args, institutions=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.institution.choices = _institution_choices(institutions)


class ReactivationConfirmForm(_InstitutionMixin, FlaskForm):
    institution = SelectField(_l("Home institution"), validate_choice=False)
    category = SelectField(_l("Category"), validate_choice=False)

    def __init__(self, *args, institutions=(), categories=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.institution.choices = _institution_choices(institutions)
        self.category.choices = [("", _l("Choose your category"))] + [
            (c.key, c.label) for c in categories]

    def validate_category(self, field):
        if field.data not in {key for key, _ in field.choices if key}:
            raise ValidationError(_l("Choose a category from the list."))
