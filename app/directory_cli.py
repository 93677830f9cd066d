"""``flask --app wsgi directory ...``: service accounts in the directory.

These commands bind as the directory's rootdn, given only to the operator's
shell (``PORTAL_LDAP_ADMIN_DN`` and ``PORTAL_LDAP_ADMIN_PASSWORD``), never to
the web portal: the portal's own account cannot create or change another
service's credentials.
"""
from __future__ import annotations

import os

import click
from flask.cli import AppGroup

from . import portal
from .directory import DirectoryError, EntryExists, NoSuchEntry
from .directory.services_accounts import ServiceAccounts

directory_cli = AppGroup("directory", help="Service accounts in the directory (as the rootdn).")


def _accounts() -> ServiceAccounts:
    admin_dn = os.environ.get("PORTAL_LDAP_ADMIN_DN", "")
    admin_password = os.environ.get("PORTAL_LDAP_ADMIN_PASSWORD", "")
    if not admin_dn or not admin_password:
        raise click.ClickException(
            "set PORTAL_LDAP_ADMIN_DN and PORTAL_LDAP_ADMIN_PASSWORD (the directory's rootdn)")
    return ServiceAccounts(portal().directory, admin_dn, admin_password)


@directory_cli.command("add-service")
@click.argument("name")
@click.option("--description", default="", help="What the service is (stored with it).")
@click.option("--rotate", is_flag=True, help="The account exists: give it a new password.")
def add_service(name: str, description: str, rotate: bool) -> None:
    """Create cn=NAME,ou=services with a generated password (shown once)."""
    accounts = _accounts()
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
        found = _accounts().list()
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
        _accounts().remove(name)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    except NoSuchEntry as exc:
        raise click.ClickException(f"no service account {name}") from exc
    except DirectoryError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{name} removed")
