"""The composition root: the directory, the mailer and the services, built
once per application; views and commands reach them through ``portal()``."""
from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app, url_for

from .directory import Directory
from .mail import Mailer
from .services.accounts import AccountService
from .services.approval import ApprovalService
from .services.changes import MembershipChanges
from .services.lifecycle import LifecycleService
from .services.reactivation import ReactivationService
from .services.registration import RegistrationService
from .services.review import Reviewers
from .services.tokens import LinkTokens
from .settings import Settings


@dataclass(frozen=True)
class Portal:
    """Everything the views need, built once per application."""
    settings: Settings
    directory: Directory
    mailer: Mailer
    registration: RegistrationService
    approval: ApprovalService
    reviewers: Reviewers
    accounts: AccountService
    lifecycle: LifecycleService
    reactivation: ReactivationService
    changes: MembershipChanges

    def directory_identity(self) -> str:
        """Bind as the service account and ask who it is (``flask portal check``)."""
        return self.directory.ping()


def portal() -> Portal:
    return current_app.extensions["portal"]


def init_portal(app: Flask, settings: Settings) -> Portal:
    """Build the portal for ``app`` and keep it in ``app.extensions``."""
    directory = Directory(
        settings.ldap_urls, settings.ldap_base_dn, settings.ldap_bind_dn,
        settings.ldap_bind_password, connect_timeout=settings.ldap_connect_timeout,
        receive_timeout=settings.ldap_receive_timeout, main_group=settings.main_group,
    )
    mailer = Mailer(directory, settings.mail_from)
    links = LinkTokens(settings.secret_key, settings.secret_key_fallbacks,
                       settings.link_max_age_days * 86400)

    def link_url(endpoint: str, token: str | None) -> str:
        # The configured base URL, never the request's Host header.
        values = {"token": token} if token is not None else {}
        with app.test_request_context(base_url=settings.base_url):
            return url_for(endpoint, _external=True, **values)

    reviewers = Reviewers(directory, mailer, links, settings, link_url)
    registration = RegistrationService(directory, mailer, links, settings, link_url, reviewers)
    accounts = AccountService(directory, mailer, links, settings, link_url)
    approval = ApprovalService(directory, mailer, links, settings, registration, reviewers,
                               accounts.send_reset_link)
    lifecycle = LifecycleService(directory, mailer, link_url)
    reactivation = ReactivationService(directory, mailer, links, settings, registration,
                                       reviewers, link_url)
    changes = MembershipChanges(directory, settings, reviewers)
    app.extensions["portal"] = Portal(settings, directory, mailer, registration, approval,
                                      reviewers, accounts, lifecycle, reactivation, changes)
    return app.extensions["portal"]
