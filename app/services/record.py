"""A member corrects their own record from "My account": the institutional
address (the new one confirmed by a link sent to it) and the names (the
collaboration address follows the rule; the old one stays as an alias)."""
from __future__ import annotations

import logging

from flask_babel import lazy_gettext as _l

from ..clock import Clock, utcnow
from ..directory import Directory, Person, StateConflict
from ..mail import Mailer
from ..settings import Settings
from ..vocabulary import MemberStatus
from . import names
from .addresses import CollaborationAddresses
from .audit import Actor, audit_event
from .changes import ChangeRefused
from .errors import LinkInvalid
from .links import AddressLink, Links

log = logging.getLogger(__name__)
CORRECTABLE = (MemberStatus.ACTIVE, MemberStatus.EXPIRED)


class RecordChanges:
    def __init__(self, directory: Directory, mailer: Mailer, links: Links, settings: Settings,
                 addresses: CollaborationAddresses, clock: Clock = utcnow):
        self._directory = directory
        self._mailer = mailer
        self._links = links
        self._settings = settings
        self._addresses = addresses
        self._clock = clock

    def _active(self, account_name: str) -> Person:
        """The member, if their record may be corrected: active, or expired
        (the seeds: "even after expiration"); not while suspended."""
        person = self._directory.person(account_name)
        if person is None or person.status not in CORRECTABLE:
            raise ChangeRefused(_l("Only active members can change their record."))
        return person

    # -- the institutional address ---------------------------------------------------------

    def ask_address_change(self, account_name: str, address: str, actor: Actor) -> None:
        """Mail a confirmation link to the new address; nothing changes yet."""
        person = self._active(account_name)
        address = address.strip()
        domain = address.rpartition("@")[2].lower()
        if "@" not in address or domain in self._settings.webmail_domains:
            raise ChangeRefused(_l("Give the address of your institution."))
        if address.lower() == (person.contact_mail or "").lower():
            raise ChangeRefused(_l("This is your address already."))
        link = AddressLink(person.account_name, address, person.contact_mail)
        self._mailer.send("address_confirm", [address], person.language, person=person,
                          address=address, link=self._links.url(link),
                          max_age_days=self._links.max_age_days)
        self._directory.add_person_audit(person.account_name, audit_event(
            "member.address-change-asked", actor, self._clock()))

    def address_change_for(self, token: str) -> tuple[Person, str]:
        """The member and new address of a link (GET: nothing changes); the
        link acts once: it is bound to the address it replaces."""
        link = self._links.load(AddressLink, token)
        person = self._directory.person(link.account_name)
        if person is None or person.status not in CORRECTABLE or \
                (person.contact_mail or "") != link.current:
            raise LinkInvalid("used, replaced or not active")
        return person, link.address

    def confirm_address_change(self, token: str, actor: Actor) -> Person:
        person, address = self.address_change_for(token)
        others = [r for r in self._directory.earlier_records(emails=[address.lower()])
                  if r.is_person and r.account_name != person.account_name]
        if others:
            raise ChangeRefused(_l("This address cannot be used for your record; "
                                   "please ask the helpdesk."))
        try:
            self._directory.replace_contact_mail(
                person.account_name, person.contact_mail, address,
                audit_event("member.address-changed", actor, self._clock(),
                            old=person.contact_mail, new=address))
        except StateConflict as exc:
            raise LinkInvalid("changed meanwhile") from exc
        old = person.contact_mail
        if old:
            self._mailer.send("address_changed", [old], person.language, person=person,
                              address=address)
        return self._directory.person(person.account_name)

    # -- names --------------------------------------------------------------------------------

    def correct_names(self, account_name: str, given: str, middle: str, family: str,
                      actor: Actor) -> Person:
        """New names; the collaboration address follows them (the rule:
        given.middle.family, a digit on collision), the old address stays
        as an alias on the entry."""
        person = self._active(account_name)
        given, middle, family = (names.normalise_name(n or "") for n in (given, middle, family))
        problem = next((names.name_problem(n) for n in (given, middle, family)
                        if names.name_problem(n)), None)
        if not given or not family or problem:
            raise ChangeRefused(_l("These names cannot be used: %(problem)s.",
                                   problem=problem or _l("a given and a family name are needed")))
        if (given, middle, family) == (person.given_name, person.middle_name, person.family_name):
            raise ChangeRefused(_l("These are your names already."))
        mail = self._addresses.free_address(given, middle, family,
                                            exclude_account=person.account_name)
        self._directory.correct_names(
            person.account_name, given=given, middle=middle, family=family,
            name_key=names.person_key(given, family), mail=mail, old_mail=person.mail,
            audit_event=audit_event("member.names-corrected", actor, self._clock(),
                                    old=person.display_name, mail=mail))
        return self._directory.person(person.account_name)
