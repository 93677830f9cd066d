"""A registration from an IR's invitation (``submit_invited``): the part of
RegistrationService for the invited path, in a module of its own. It uses
the service's directory, duplicates and clock and the steps it shares with
``submit`` (the first checks, the request built and written)."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..directory import RequestRecord
from .audit import SYSTEM, Actor, audit_event

if TYPE_CHECKING:
    from .registration import Application

log = logging.getLogger("app.services.registration")  # the registration's log, as before


class InvitedRegistration:
    # -- a registration from an IR's invitation -------------------------------------------

    def submit_invited(self, application: Application, actor: Actor, *,
                       invitation_id: str, invited_by: str) -> RequestRecord:
        """Write the request of an invited person: the invitation's link
        went to the address, so the address counts as confirmed at once and
        the request waits for approval (no confirmation mail). The same
        checks as ``submit`` (PossiblyKnown, SimilarPersonExists,
        UnknownPreviousAccount, AccountNameUnavailable, UnknownInstitution);
        naming an expired account files a reactivation as there. The caller
        asks the approvers."""
        returned, password_hash = self._screened(application, actor)
        if returned is not None:
            return returned
        now = self._clock()
        new = self._registration_request(application, actor, now, password_hash,
                                         route="invitation", invitation=invitation_id,
                                         invited_by=invited_by)
        for earlier in self._unconfirmed_for(new):
            self._directory.withdraw_unconfirmed(earlier.id)
        request_id = self._add_registration(new, now)
        # The invitation's link went to the address: it is confirmed with the
        # submission (the same transition as a confirmation link's).
        self._directory.record_address_confirmed(request_id, now, audit_event(
            "request.email-verified", actor, now, by="invitation", invitation=invitation_id))
        request = self._directory.request(request_id)
        log.info("invited request submitted", extra={"event": "request.submitted",
                                                     "account": new.account_name})
        found = self._duplicates.of_request(request)
        if found:
            self._directory.add_request_audit(request.id, audit_event(
                "request.possible-duplicate", SYSTEM, now,
                matches=",".join(m.record.account_name for m in found)))
            return self._directory.request(request.id)
        return request
