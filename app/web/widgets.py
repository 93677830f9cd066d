"""Form fields whose rendering is on every page view: a select of every
institution (150 and more) rendered through WTForms' generic attribute
builder took ~10 ms per page; this writes the same HTML directly."""
from __future__ import annotations

from markupsafe import Markup, escape
from wtforms import SelectField as _SelectField
from wtforms.widgets import Select as _Select


class Select(_Select):
    @classmethod
    def render_option(cls, choice, **kwargs):
        if kwargs or choice.render_kw or isinstance(choice.value, bool):
            return super().render_option(choice, **kwargs)
        # html_params' output for value (+ selected): attributes sorted by name.
        label = escape(choice.label or choice.value)
        selected = "selected " if choice.selected else ""
        return Markup(f'<option {selected}value="{escape(choice.value)}">{label}</option>')


class SelectField(_SelectField):
    widget = Select()
