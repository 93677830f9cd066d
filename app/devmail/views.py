"""Dev mode only: the mail caught by the dev stack's SMTP server."""
from __future__ import annotations

import re
from email import policy
from email.parser import BytesParser
from pathlib import Path

from flask import Blueprint, abort, render_template
from markupsafe import Markup, escape

from ..portal import portal

bp = Blueprint("devmail", __name__, url_prefix="/dev/mail")
_NAME_RE = re.compile(r"^[0-9A-Za-z._-]+\.eml$")
_URL_RE = re.compile(r"https?://[^\s<>\"]+")


def _mail_dir() -> Path:
    return Path(portal().settings.dev_mail_dir)


def _parse(path: Path) -> dict:
    message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    text = message.get_body(preferencelist=("plain",))
    return {"name": path.name, "subject": message["subject"], "to": message["to"],
            "from": message["from"], "date": message["date"],
            "text": text.get_content() if text else ""}


def _linkify(text: str) -> Markup:
    escaped = str(escape(text))
    return Markup(_URL_RE.sub(lambda m: f'<a href="{m.group(0)}">{m.group(0)}</a>', escaped))


@bp.get("")
def mail_list():
    directory = _mail_dir()
    files = sorted(directory.glob("*.eml"), reverse=True) if directory.is_dir() else []
    return render_template("dev/mail_list.html", messages=[_parse(f) for f in files])


@bp.get("/<name>")
def mail_show(name: str):
    if not _NAME_RE.match(name) or not (_mail_dir() / name).is_file():
        abort(404)
    message = _parse(_mail_dir() / name)
    return render_template("dev/mail_show.html", message=message, body=_linkify(message["text"]))
