"""Commands for operators and cron: ``flask --app wsgi portal check`` etc."""
from __future__ import annotations

import smtplib
import sys
from datetime import datetime, timezone

import click
from flask import Flask
from flask.cli import AppGroup

from . import portal
from .directory import DirectoryError
from .mail import mail

portal_cli = AppGroup("portal", help="Check and repair the portal.")
mail_cli = AppGroup("mail", help="The outgoing mail queue.")
accounts_cli = AppGroup("accounts", help="Members' accounts (scheduled jobs).")


@portal_cli.command("check")
def check() -> None:
    """Bind to the directory and connect to SMTP; report each part."""
    settings = portal().settings
    failed = False
    try:
        identity = portal().directory.ping()
        click.echo(f"directory  OK      {', '.join(settings.ldap_urls)} as {identity}")
    except DirectoryError as exc:
        failed = True
        click.echo(f"directory  FAILED  {', '.join(settings.ldap_urls)}: {exc}")
    try:
        with mail.connect() as connection:
            code, _ = connection.host.noop()
        click.echo(f"smtp       OK      {settings.smtp_host}:{settings.smtp_port} (NOOP {code})")
    except (smtplib.SMTPException, OSError) as exc:
        failed = True
        click.echo(f"smtp       FAILED  {settings.smtp_host}:{settings.smtp_port}: {exc}")
    sys.exit(1 if failed else 0)


@portal_cli.command("complete-approvals")
def complete_approvals() -> None:
    """Finish account creation of approved requests interrupted by a fault."""
    count = portal().approval.complete_pending()
    click.echo(f"completed {count} approved request(s)")


@mail_cli.command("retry")
def retry() -> None:
    """Send the messages waiting in the outbox (idempotent; for cron)."""
    report = portal().mailer.retry_outbox()
    click.echo(f"sent {report.sent}, still waiting {report.failed}")
    sys.exit(1 if report.failed else 0)


@accounts_cli.command("notify-expiring")
@click.option("--now", "now_text", metavar="ISO-TIME",
              help="Pretend it is this time (UTC), e.g. 2027-05-01T09:00:00Z; for tests.")
def notify_expiring(now_text: str | None) -> None:
    """Mail members whose password expires soon, once per warning (for cron)."""
    now = None
    if now_text:
        now = datetime.fromisoformat(now_text.replace("Z", "+00:00"))
        if now.tzinfo is None:
            now = now.replace(tzinfo=timezone.utc)
    sent = portal().accounts.notify_expiring(now)
    for days, count in sent.items():
        click.echo(f"{days:>4}-day warnings sent: {count}")
    click.echo(f"total: {sum(sent.values())}")


def register_cli(app: Flask) -> None:
    app.cli.add_command(portal_cli)
    app.cli.add_command(mail_cli)
    app.cli.add_command(accounts_cli)
