"""The IR's decision forms."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length


class ApproveForm(FlaskForm):
    # Only asked (and then required) when the stage records a formal application.
    reference = StringField(
        _l("Reference of the formal application (date, number or link)"),
        filters=[lambda v: v.strip() if isinstance(v, str) else v],
        validators=[Length(max=200)])


class RejectForm(FlaskForm):
    reason = TextAreaField(
        _l("Reason (sent to the applicant)"),
        filters=[lambda v: v.strip() if isinstance(v, str) else v],
        validators=[DataRequired(_l("Give the reason for the rejection: the applicant reads "
                                     "it.")), Length(max=2000)])
