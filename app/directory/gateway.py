"""The directory gateway: the only code that talks LDAP.

``Directory`` is one facade over the entity modules, each with one
attribute map: people, requests, groups and institutions, passwords
(ppolicy), the outbox, and the cross-entity identity lookups. Connection
handling, error mapping and escaping live in connection.py.
"""
from __future__ import annotations

from typing import Iterable

from .groups import Groups
from .helpdesk import HelpdeskLookups
from .identities import Identities
from .invitations import Invitations
from .memberslist import MembersList
from .outbox import Outbox
from .passwords import Passwords
from .people import People
from .requests import Requests


class Directory(People, Requests, Groups, Passwords, Outbox, Identities, MembersList,
                HelpdeskLookups, Invitations):
    def __init__(
        self, urls: Iterable[str], base_dn: str, bind_dn: str, bind_password: str,
        connect_timeout: float = 5, receive_timeout: float = 10, main_group: str = "members",
        ca_file: str = "", start_tls: bool = False,
    ):
        super().__init__(urls, base_dn, bind_dn, bind_password,
                         connect_timeout=connect_timeout, receive_timeout=receive_timeout,
                         ca_file=ca_file, start_tls=start_tls)
        self.main_group_dn = self.group_dn(main_group)
