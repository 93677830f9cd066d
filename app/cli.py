"""Commands for operators and cron: ``flask --app wsgi portal check`` etc."""
from __future__ import annotations

import json
import os
import signal
import smtplib
import sys
from datetime import datetime, timezone

import click
from flask import Flask
from flask.cli import AppGroup

from .mail import mail
from .portal import portal
from .services.audit import Actor
from .services.errors import DirectoryError, EntryExists, NoSuchEntry, SchemaOutdated
from .services.lifecycle import LifecycleError

portal_cli = AppGroup("portal", help="Check and repair the portal.")
mail_cli = AppGroup("mail", help="The outgoing mail queue.")
accounts_cli = AppGroup("accounts", help="Members' accounts (scheduled jobs).")
members_cli = AppGroup("members", help="Membership lifecycle (helpdesk and cron).")
requests_cli = AppGroup("requests", help="Requests in the directory (cron).")


@portal_cli.command("check")
def check() -> None:
    """Bind to the directory and connect to SMTP; report each part."""
    settings = portal().settings
    failed = False
    try:
        identity = portal().directory_identity()
        click.echo(f"directory  OK      {', '.join(settings.ldap_urls)} as {identity}")
        missing = portal().directory_missing_features()
        # What the directory must have besides the bind: (part, holds, OK, FAILED).
        for part, holds, fine, broken in (
                ("features", not missing,
                 "post-read control and modify-increment announced",
                 f"the directory does not announce {' or '.join(missing)}: "
                 "approvals cannot take uid numbers"),
                ("policies", portal().lifecycle.expired_policy_present(),
                 "cn=expired for expired members",
                 "cn=expired,ou=policies is missing (bootstrap.ldif): "
                 "expired members stay behind the administrative lock"),
                ("schema", portal().accounts.expiry_notices_searchable(),
                 "portalExpiryNotice has its SUBSTR rule",
                 "portalExpiryNotice has no SUBSTR rule: load ldap_schema/portal.schema; "
                 "accounts notify-expiring refuses to run")):
            failed = failed or not holds
            click.echo(f"{part:<10} {'OK' if holds else 'FAILED':<7} {fine if holds else broken}")
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
    """Messages waiting in the outbox: recipients, attempts, next attempt, last error."""
    waiting = portal().mailer.outbox()
    for message in waiting:
        queued = message.queued_at.strftime("%Y-%m-%d %H:%M:%S") if message.queued_at else "?"
        due = message.not_before.strftime("%Y-%m-%d %H:%M:%S") if message.not_before else "now"
        sender = "" if message.claim in ("", "-") else f"  being sent by {message.claim}"
        click.echo(f"{message.id}  queued {queued}  attempts {message.attempts}  "
                   f"next {due}  to {', '.join(message.recipients)}  "
                   f"error: {message.last_error or '-'}{sender}")
    click.echo(f"{len(waiting)} message(s) waiting")


def _report(report) -> None:
    click.echo(f"sent {report.sent}, still waiting {report.waiting}")
    sys.exit(1 if report.failed else 0)


@mail_cli.command("send")
@click.option("--loop", "loop", is_flag=True,
              help="Keep sending (the sender process next to gunicorn).")
@click.option("--once", "once", is_flag=True, help="One round, then exit (cron).")
@click.option("--interval", type=float, default=2.0, show_default=True,
              help="Seconds between rounds with --loop.")
def send(loop: bool, once: bool, interval: float) -> None:
    """Deliver the outbox: every due message, claimed first (so that
    concurrent senders never send one twice); failures wait with a backoff."""
    if loop and once:
        raise click.UsageError("--loop or --once, not both")
    mailer = portal().mailer
    if not loop:
        _report(mailer.deliver_waiting())
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    click.echo(f"mail sender: a round every {interval:g} s (SIGTERM stops it)")
    try:
        mailer.run(interval, stop=lambda: bool(stopping))
    except KeyboardInterrupt:
        pass


@mail_cli.command("retry")
def retry() -> None:
    """Send every waiting message now, backoff or not (the same sender; for
    cron and after an SMTP fault was fixed)."""
    _report(portal().mailer.deliver_waiting(due_only=False))


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
    try:
        sent = portal().accounts.notify_expiring(_parse_now(now_text))
    except SchemaOutdated as exc:
        click.echo(f"not run: {exc}", err=True)
        sys.exit(1)
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
    # Also those expired earlier behind the old lock: they may now log in
    # to see their status (no service lets them in either way).
    released = portal().lifecycle.release_expired_locks()
    click.echo(f"status page opened to {released} expired member(s)")


@requests_cli.command("expire-unconfirmed")
@NOW_OPTION
def expire_unconfirmed(now_text: str | None) -> None:
    """Withdraw registrations not confirmed within PORTAL_UNCONFIRMED_REQUEST_DAYS:
    their account names are free again (idempotent; for cron)."""
    count = portal().registration.expire_unconfirmed(_parse_now(now_text))
    click.echo(f"withdrew {count} unconfirmed request(s)")


@requests_cli.command("remind")
@NOW_OPTION
def remind(now_text: str | None) -> None:
    """Remind the approvers of requests waiting longer than PORTAL_REMINDER_DAYS
    (then every as many days), escalate to deputies, helpdesk and applicant
    after PORTAL_ESCALATION_DAYS, expire unconfirmed registrations; prints
    what it did (idempotent; for cron)."""
    report = portal().reminders.run(_parse_now(now_text))
    for line in report.lines:
        click.echo(line)
    click.echo(f"reminded {report.reminded}, escalated {report.escalated}, "
               f"expired {report.expired} request(s), {report.failed} failed")
    sys.exit(1 if report.failed else 0)


@members_cli.command("suspend")
@click.argument("account_name")
@click.option("--reason", required=True, help="Why (recorded and mailed to the member).")
@click.option("--by", "actor", required=True, help="Who decides (recorded).")
def suspend(account_name: str, reason: str, actor: str) -> None:
    """Suspend a member: locked everywhere, out of the main group."""
    _change_member(portal().lifecycle.suspend, account_name, reason, actor, "suspended")


@members_cli.command("unsuspend")
@click.argument("account_name")
@click.option("--reason", required=True)
@click.option("--by", "actor", required=True)
def unsuspend(account_name: str, reason: str, actor: str) -> None:
    """End a suspension: unlocked, back in the main group."""
    _change_member(portal().lifecycle.unsuspend, account_name, reason, actor, "active again")


def _change_member(change, account_name: str, reason: str, actor: str, done: str) -> None:
    try:
        change(account_name, reason, Actor(actor, "cli"))
    except LifecycleError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{account_name} {done}")


@members_cli.command("history")
@click.argument("account_name")
def history(account_name: str) -> None:
    """The audit records of a member (who, when, from where, why)."""
    events = portal().lifecycle.history(account_name)
    if events is None:
        raise click.ClickException(f"no member {account_name}")
    for event in events:
        click.echo(json.dumps(event, ensure_ascii=False))


@members_cli.command("roster-status")
@NOW_OPTION
def roster_status(now_text: str | None) -> None:
    """Institutions and their roster confirmations: those not confirmed within
    PORTAL_ROSTER_CONFIRMATION_DAYS first (what the helpdesk sees at /ir/rosters)."""
    statuses = portal().roster.roster_status(_parse_now(now_text))
    for s in statuses:
        confirmed = s.institution.roster_confirmed_at
        last = f"{confirmed:%Y-%m-%d} by {s.institution.roster_confirmed_by}" if confirmed \
            else "never confirmed"
        state = "OVERDUE" if s.overdue else f"due {s.due_at:%Y-%m-%d}"
        click.echo(f"{s.institution.id}\t{state}\t{last}\t{s.institution.name}")
    click.echo(f"{sum(s.overdue for s in statuses)} of {len(statuses)} institution(s) overdue")


# -- service accounts: bound as the directory's rootdn, given only to the
# operator's shell (PORTAL_LDAP_ADMIN_DN, PORTAL_LDAP_ADMIN_PASSWORD), never to
# the web portal, whose own account cannot create another service's credentials.

directory_cli = AppGroup("directory", help="Service accounts in the directory (as the rootdn).")


def _service_accounts():
    admin_dn = os.environ.get("PORTAL_LDAP_ADMIN_DN", "")
    admin_password = os.environ.get("PORTAL_LDAP_ADMIN_PASSWORD", "")
    if not admin_dn or not admin_password:
        raise click.ClickException(
            "set PORTAL_LDAP_ADMIN_DN and PORTAL_LDAP_ADMIN_PASSWORD (the directory's rootdn)")
    return portal().service_accounts(admin_dn, admin_password)


@directory_cli.command("add-service")
@click.argument("name")
@click.option("--description", default="", help="What the service is (stored with it).")
@click.option("--rotate", is_flag=True, help="The account exists: give it a new password.")
def add_service(name: str, description: str, rotate: bool) -> None:
    """Create cn=NAME,ou=services with a generated password (shown once)."""
    accounts = _service_accounts()
    try:
        password = accounts.rotate(name) if rotate else accounts.add(name, description)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    except EntryExists as exc:
        raise click.ClickException(f"{name} exists; use --rotate for a new password") from exc
    except NoSuchEntry as exc:
        raise click.ClickException(f"no service account {name}") from exc
    except DirectoryError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"bind DN   {accounts.dn(name)}")
    click.echo(f"password  {password}")
    click.echo("The password is shown only now; store it in the service's configuration.")


@directory_cli.command("list-services")
def list_services() -> None:
    """The service accounts: name, bind DN, policy, description."""
    try:
        found = _service_accounts().list()
    except DirectoryError as exc:
        raise click.ClickException(str(exc)) from exc
    for account in found:
        click.echo(f"{account.name}\t{account.dn}\t{account.policy or '-'}\t{account.description}")
    click.echo(f"{len(found)} service account(s)")


@directory_cli.command("remove-service")
@click.argument("name")
def remove_service(name: str) -> None:
    """Delete cn=NAME,ou=services: the service can no longer bind."""
    try:
        _service_accounts().remove(name)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    except NoSuchEntry as exc:
        raise click.ClickException(f"no service account {name}") from exc
    except DirectoryError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{name} removed")


members_list_cli = AppGroup("members-list", help="The collaboration's members list (helpdesk).")


@members_list_cli.command("import")
@click.argument("csv_file", type=click.File("r", encoding="utf-8-sig"))
def import_members_list(csv_file) -> None:
    """Replace the members list with FILE.csv (columns: email, given, family,
    institution, optional certificate DN); a broken line imports nothing."""
    from .services.memberslist import MembersListRefused
    try:
        result = portal().members_list.import_csv(csv_file.read())
    except MembersListRefused as refused:
        for problem in refused.problems:
            click.echo(problem, err=True)
        click.echo("nothing imported: the members list is unchanged", err=True)
        sys.exit(1)
    except UnicodeDecodeError:
        click.echo("the file is not UTF-8 text: nothing imported", err=True)
        sys.exit(1)
    click.echo(f"members list replaced: {result.imported} member(s) (before: {result.before})")


@members_list_cli.command("show")
def show_members_list() -> None:
    """The members list as imported (CSV on stdout)."""
    import csv
    writer = csv.writer(sys.stdout)
    for row in portal().members_list.listed():
        writer.writerow([row.email, row.given, row.family, row.institution, row.certificate])


def register_cli(app: Flask) -> None:
    app.cli.add_command(portal_cli)
    app.cli.add_command(mail_cli)
    app.cli.add_command(accounts_cli)
    app.cli.add_command(members_cli)
    app.cli.add_command(requests_cli)
    app.cli.add_command(directory_cli)
    app.cli.add_command(members_list_cli)
