"""The portal's words: statuses, kinds of request, approval stages and the
account-name rule. Gateway, services, views and templates all use these
(templates through the globals ``RequestStatus``, ``RequestKind``,
``MemberStatus``); the values are what the directory stores."""
from __future__ import annotations

import re
from enum import StrEnum

# 4-8 characters, lowercase letters and digits, a letter first (seed rule).
ACCOUNT_NAME_RE = re.compile(r"^[a-z][a-z0-9]{3,7}$")


class RequestStatus(StrEnum):
    PENDING_VERIFICATION = "pending-verification"  # the address is not confirmed yet
    PENDING_APPROVAL = "pending-approval"
    APPROVED = "approved"
    REJECTED = "rejected"
    # Never confirmed and expired, or withdrawn to start over (a restart
    # link): only for the moment before the request is deleted. Withdrawn by
    # the applicant (the status page): kept with its history, holding no
    # account name.
    WITHDRAWN = "withdrawn"


# Undecided: the request still waits for the applicant or an approver.
OPEN_STATUSES = (RequestStatus.PENDING_VERIFICATION, RequestStatus.PENDING_APPROVAL)
# Ended without a member: such a request keeps its history but holds no
# account name, address or person.
ENDED_STATUSES = (RequestStatus.REJECTED, RequestStatus.WITHDRAWN)


class RequestKind(StrEnum):
    REGISTRATION = "registration"
    REACTIVATION = "reactivation"
    GROUP = "group"  # application for an extra group
    INSTITUTION_CHANGE = "institution-change"  # a move to another institution
    CATEGORY_CHANGE = "category-change"  # another category, approved as the category's chain


class MemberStatus(StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    SUSPENDED = "suspended"
    # An entry in ou=people that never was a collaboration member (a host-lab
    # account): no portalStatus at all.
    NONE = ""


# Who may ask for reactivation: expired members and host-lab accounts.
REACTIVATION_ELIGIBLE = (MemberStatus.EXPIRED, MemberStatus.NONE)

# Approval stages of a chain: the representatives of the request's
# institution, or the members of a group ("group:ib").
IR_STAGE = "ir"
GROUP_STAGE_PREFIX = "group:"


def group_stage(cn: str) -> str:
    return GROUP_STAGE_PREFIX + cn


def stage_group(stage: str) -> str | None:
    """The group cn of a "group:<cn>" stage, None for any other stage."""
    return stage[len(GROUP_STAGE_PREFIX):] if stage.startswith(GROUP_STAGE_PREFIX) else None


def is_account_name(value: object) -> bool:
    return isinstance(value, str) and bool(ACCOUNT_NAME_RE.match(value))


class InvitationState(StrEnum):
    """An invitation's stored state; "expired" is an open one past its date."""
    OPEN = "open"
    USED = "used"  # the registration was submitted with it
    REVOKED = "revoked"
    EXPIRED = "expired"  # shown only, never stored
