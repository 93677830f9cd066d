"""The IR's decision forms."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import TextAreaField
from wtforms.validators import DataRequired, Length


class ApproveForm(FlaskForm):
    pass


class RejectForm(FlaskForm):
    reason = TextAreaField(
        _l("Reason (sent to the applicant)"),
        filters=[lambda v: v.strip() if isinstance(v, str) else v],
        validators=[DataRequired(_l("Give the reason for the rejection: the applicant reads "
                                     "it.")), Length(max=2000)])
