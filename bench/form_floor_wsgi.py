"""The form floor: the floor app's login and change (bench/floor_wsgi.py,
its persistent connection per thread and bytes passwords) plus only what the
portal's fixed stack (Flask, Flask-WTF, Jinja2) adds to any form a browser
submits: the page, rendered by Jinja2 with Flask-WTF's CSRF token; the token
kept in Flask's signed session cookie and checked on the POST; the login kept
in the session. The change also checks the new password with zxcvbn, the
portal's strength check. No layout, translations, rate limits, audit, session
checks or mail: what no portal on this stack can do without, so its rates
are the most such a portal can reach on this machine."""
from __future__ import annotations

import os

from flask import Flask, redirect, session
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import InputRequired
from zxcvbn import zxcvbn

from bench.floor_wsgi import floor

app = Flask(__name__)
# One key for every worker (driver.serve_floor), as the portal's workers share theirs.
app.config["SECRET_KEY"] = os.environ["BENCH_FLOOR_SECRET"]
PEOPLE = "ou=people,dc=example,dc=org"  # the floor's own base
PAGE = app.jinja_env.from_string("""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title></head>
<body><main><h1>{{ title }}</h1><form method="post">{{ form.csrf_token }}
{% for field in form if field.name != "csrf_token" %}
<p>{{ field.label }} {{ field() }}</p>{% endfor %}
<button type="submit">{{ title }}</button></form></main></body></html>""")


class LoginForm(FlaskForm):
    login = StringField("Account name", validators=[InputRequired()])
    password = PasswordField("Password", validators=[InputRequired()])


class ChangeForm(FlaskForm):
    login = StringField("Account name", validators=[InputRequired()])
    old = PasswordField("Current password", validators=[InputRequired()])
    new = PasswordField("New password", validators=[InputRequired()])


@app.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    if form.validate_on_submit():
        if not floor.conn().rebind(user=f"uid={form.login.data},{PEOPLE}",
                                   password=form.password.data.encode()):
            return "no", 401
        session["login"] = form.login.data
        return redirect("/account")
    return PAGE.render(title="Log in", form=form)


@app.route("/change", methods=["GET", "POST"])
def change():
    form = ChangeForm()
    if form.validate_on_submit():
        login, old, new = form.login.data, form.old.data, form.new.data
        if zxcvbn(new[:72], user_inputs=[login])["score"] < 3:
            return "weak", 400
        c, dn = floor.conn(), f"uid={login},{PEOPLE}"
        if not c.rebind(user=dn, password=old.encode()):
            return "no", 401
        if not c.extend.standard.modify_password(dn, old.encode(), new.encode()):
            return "fail", 500
        return redirect("/account")
    return PAGE.render(title="Change password", form=form)
