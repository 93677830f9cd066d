"""Commands for operators and cron: ``flask --app wsgi portal check`` etc."""
from __future__ import annotations

import json
import smtplib
import sys
from datetime import datetime, timezone

import click
from flask import Flask
from flask.cli import AppGroup

from . import portal
from .directory import DirectoryError
from .directory_cli import directory_cli
from .mail import mail
from .services.audit import Actor, parse_events
from .services.lifecycle import LifecycleError

portal_cli = AppGroup("portal", help="Check and repair the portal.")
mail_cli = AppGroup("mail", help="The outgoing mail queue.")
accounts_cli = AppGroup("accounts", help="Members' accounts (scheduled jobs).")
members_cli = AppGroup("members", help="Membership lifecycle (helpdesk and cron).")


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
    completed, failed = portal().approval.complete_pending()
    click.echo(f"completed {completed} request(s), {failed} failed")
    sys.exit(1 if failed else 0)


@mail_cli.command("list")
def list_outbox() -> None:
    """Messages waiting in the outbox: recipients, attempts, last error."""
    waiting = portal().directory.outbox_messages()
    for message in waiting:
        queued = message.queued_at.strftime("%Y-%m-%d %H:%M") if message.queued_at else "?"
        click.echo(f"{message.id}  {queued}  attempts {message.attempts}  "
                   f"to {', '.join(message.recipients)}  error: {message.last_error}")
    click.echo(f"{len(waiting)} message(s) waiting")


@mail_cli.command("retry")
def retry() -> None:
    """Send the messages waiting in the outbox (idempotent; for cron)."""
    report = portal().mailer.retry_outbox()
    click.echo(f"sent {report.sent}, still waiting {report.failed}")
    sys.exit(1 if report.failed else 0)


def _parse_now(now_text: str | None) -> datetime | None:
    if not now_text:
        return None
    now = datetime.fromisoformat(now_text.replace("Z", "+00:00"))
    return now if now.tzinfo else now.replace(tzinfo=timezone.utc)


NOW_OPTION = click.option(
    "--now", "now_text", metavar="ISO-TIME",
    help="Pretend it is this time (UTC), e.g. 2027-05-01T09:00:00Z; for tests.")


@accounts_cli.command("notify-expiring")
@NOW_OPTION
def notify_expiring(now_text: str | None) -> None:
    """Mail members whose password expires soon, once per warning (for cron)."""
    sent = portal().accounts.notify_expiring(_parse_now(now_text))
    for days, count in sent.items():
        click.echo(f"{days:>4}-day warnings sent: {count}")
    click.echo(f"total: {sum(sent.values())}")


@members_cli.command("expire")
@NOW_OPTION
def expire_members(now_text: str | None) -> None:
    """Members past their member-until date: expired, out of the main group,
    locked in the directory, mailed how to reactivate (idempotent; for cron)."""
    count = portal().lifecycle.expire_due(_parse_now(now_text))
    click.echo(f"expired {count} member(s)")


@members_cli.command("suspend")
@click.argument("account_name")
@click.option("--reason", required=True, help="Why (recorded and mailed to the member).")
@click.option("--by", "actor", required=True, help="Who decides (recorded).")
def suspend(account_name: str, reason: str, actor: str) -> None:
    """Suspend a member: locked everywhere, out of the main group."""
    try:
        portal().lifecycle.suspend(account_name, reason, Actor(actor, "cli"))
    except LifecycleError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{account_name} suspended")


@members_cli.command("unsuspend")
@click.argument("account_name")
@click.option("--reason", required=True)
@click.option("--by", "actor", required=True)
def unsuspend(account_name: str, reason: str, actor: str) -> None:
    """End a suspension: unlocked, back in the main group."""
    try:
        portal().lifecycle.unsuspend(account_name, reason, Actor(actor, "cli"))
    except LifecycleError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{account_name} active again")


@members_cli.command("history")
@click.argument("account_name")
def history(account_name: str) -> None:
    """The audit records of a member (who, when, from where, why)."""
    person = portal().directory.person(account_name)
    if person is None:
        raise click.ClickException(f"no member {account_name}")
    for event in parse_events(person.audit):
        click.echo(json.dumps(event, ensure_ascii=False))


def register_cli(app: Flask) -> None:
    app.cli.add_command(portal_cli)
    app.cli.add_command(mail_cli)
    app.cli.add_command(accounts_cli)
    app.cli.add_command(members_cli)
    app.cli.add_command(directory_cli)
