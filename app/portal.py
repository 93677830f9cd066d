"""The composition root: the directory, the mailer and the services, built
once per application; views and commands reach them through ``portal()``."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from flask import Flask, current_app

from .directory import Directory
from .directory.service_accounts import ServiceAccounts
from .mail import Mailer
from .services.accounts import AccountService
from .services.addresses import CollaborationAddresses
from .services.approval import ApprovalService
from .services.certificates import CertificateService
from .services.changes import MembershipChanges
from .services.duplicates import Duplicates
from .services.helpdesk import HelpdeskDecisions, HelpdeskInstitutions, HelpdeskService
from .services.institutions import InstitutionCatalog
from .services.invitations import InvitationService
from .services.lifecycle import LifecycleService
from .services.links import Links
from .services.memberslist import MembersListService
from .services.paper import PaperRoute
from .services.reactivation import ReactivationService
from .services.record import RecordChanges
from .services.registration import RegistrationService
from .services.reminders import Reminders
from .services.review import Reviewers
from .services.roles import RoleService
from .services.roster import RosterService
from .services.status import StatusService
from .settings import Settings
from .vocabulary import RequestKind
from .web.urls import url_builder


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
    record: RecordChanges
    roles: RoleService
    status: StatusService | None = None  # the applicant's status page
    reminders: Reminders | None = None  # flask requests remind
    roster: RosterService | None = None  # the IR console
    certificates: CertificateService | None = None  # Grid certificates: login, "My account"
    members_list: MembersListService | None = None  # the imported members list
    paper: PaperRoute | None = None  # the paper route through the helpdesk
    helpdesk: HelpdeskService | None = None  # the helpdesk's console
    helpdesk_institutions: HelpdeskInstitutions | None = None  # institutions, member list
    helpdesk_decisions: HelpdeskDecisions | None = None  # stuck requests: last resort
    invitations: InvitationService | None = None
    institutions: InstitutionCatalog | None = None  # the short-lived list every page shares

    def service_accounts(self, admin_dn: str, admin_password: str) -> ServiceAccounts:
        """Service accounts, managed with the directory administrator's
        credentials (given to the operator's commands, never to the portal)."""
        return ServiceAccounts(self.directory, admin_dn, admin_password)

    def directory_identity(self) -> str:
        """Bind as the service account and ask who it is (``flask portal check``)."""
        return self.directory.ping()

    def directory_missing_features(self) -> list[str]:
        """What the directory lacks for the portal's writes (``flask portal check``)."""
        return self.directory.missing_features()


def portal() -> Portal:
    return current_app.extensions["portal"]


def init_portal(app: Flask, settings: Settings) -> Portal:
    """Build the portal for ``app`` and keep it in ``app.extensions``."""
    directory = Directory(
        settings.ldap_urls, settings.ldap_base_dn, settings.ldap_bind_dn,
        settings.ldap_bind_password, connect_timeout=settings.ldap_connect_timeout,
        receive_timeout=settings.ldap_receive_timeout, main_group=settings.main_group,
        ca_file=settings.ldap_ca_file, start_tls=settings.ldap_start_tls,
    )
    # A claim lives far longer than one SMTP conversation can take.
    mailer = Mailer(directory, settings.mail_from, inline=settings.mail_delivery == "inline",
                    claim_timeout=timedelta(seconds=max(300, 6 * settings.smtp_timeout)))
    links = Links(settings.secret_key, settings.secret_key_fallbacks,
                  settings.link_max_age_days, url_builder(app, settings.base_url))
    addresses = CollaborationAddresses(directory, settings.mail_domain)
    reviewers = Reviewers(directory, mailer, links, settings)
    # One short-lived cache of the institutions for every page that lists them.
    institutions = InstitutionCatalog(directory)
    duplicates = Duplicates(directory, mailer, links)
    registration = RegistrationService(directory, mailer, links, settings, reviewers, addresses,
                                       duplicates, institutions)
    accounts = AccountService(directory, mailer, links, settings)
    lifecycle = LifecycleService(directory, mailer, links,
                                 grace_days=settings.membership_grace_days)
    reactivation = ReactivationService(directory, mailer, links, settings, reviewers, addresses,
                                       accounts.new_reset_url, institutions)
    changes = MembershipChanges(directory, mailer, settings, reviewers, institutions)
    record = RecordChanges(directory, mailer, links, settings, addresses)
    # Registrations filed on paper get a link to set the first password.
    paper = PaperRoute(directory, mailer, links, settings, registration, reviewers, duplicates)
    # Each workflow carries out its own kind of approved request.
    approval = ApprovalService(directory, mailer, links, reviewers, duplicates, settings, {
        RequestKind.REGISTRATION: paper.complete,
        RequestKind.REACTIVATION: reactivation.complete,
        RequestKind.GROUP: changes.complete,
        RequestKind.INSTITUTION_CHANGE: changes.complete,
        RequestKind.CATEGORY_CHANGE: changes.complete,
    })
    helpdesk_decisions = HelpdeskDecisions(directory, settings, approval, reviewers, mailer,
                                           links)
    helpdesk = HelpdeskService(directory, settings, lifecycle, helpdesk_decisions, registration,
                               reviewers, duplicates, institutions, paper, mailer, links)
    status = StatusService(directory, links, settings, reviewers,
                           registration.send_verification)
    reminders = Reminders(directory, mailer, links, settings, reviewers,
                          registration.status_url, registration.expire_unconfirmed_requests)
    roles = RoleService(directory, settings.helpdesk_group, institutions)
    app.extensions["portal"] = Portal(settings, directory, mailer, registration, approval,
                                      reviewers, accounts, lifecycle, reactivation, changes,
                                      record, roles, institutions=institutions,
                                      status=status, reminders=reminders,
                                      roster=RosterService(directory, reviewers, links, lifecycle,
                                                           settings),
                                      certificates=CertificateService(directory, settings),
                                      members_list=MembersListService(directory),
                                      paper=paper, helpdesk=helpdesk,
                                      helpdesk_institutions=HelpdeskInstitutions(
                                          directory, settings, reviewers, institutions),
                                      helpdesk_decisions=helpdesk_decisions,
                                      invitations=InvitationService(
                                          directory, mailer, links, settings, registration,
                                          approval, reviewers))
    return app.extensions["portal"]
