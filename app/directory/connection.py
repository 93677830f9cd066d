"""The directory connection: one pooled connection per thread, reopened once
on a communication failure, every ldap3 error mapped to the gateway's own
(errors.py), filter values escaped (values.py) and DNs built from validated
names only. The entity modules (people, requests, ...) build on this."""
from __future__ import annotations

import logging
import socket
import ssl
import threading
from contextlib import contextmanager
from typing import Callable, Iterable, Iterator, TypeVar

from ldap3 import (
    BASE,
    FIRST,
    NONE,
    SIMPLE,
    SUBTREE,
    SYNC,
    Connection,
    Server,
    ServerPool,
    Tls,
)
from ldap3.core import exceptions as ldap_errors
from ldap3.protocol.rfc4527 import post_read_control
from ldap3.utils.config import set_config_parameter
from ldap3.utils.dn import escape_rdn

from ..vocabulary import ACCOUNT_NAME_RE
from .controls import MODIFY_INCREMENT_OID, PAGED_RESULTS_OID, POST_READ_OID, post_read_entry
from .errors import (
    ConstraintViolation,
    DirectoryError,
    DirectoryUnavailable,
    EntryExists,
    NoSuchEntry,
    StateConflict,
    ValueExists,
)
from .values import REQUEST_ID_RE, checked_account_name, checked_identifier

log = logging.getLogger(__name__)
T = TypeVar("T")
# ldap3 sleeps this long after every unsuccessful round over the server pool
# (10 s by default), even after the last one: a request would hang instead
# of answering 503 at once.
set_config_parameter("POOLING_LOOP_TIMEOUT", 0)

# No server could be reached: retrying at once would only double the wait.
UNREACHABLE_ERRORS = (
    ldap_errors.LDAPSocketOpenError,
    ldap_errors.LDAPServerPoolExhaustedError,
    ldap_errors.LDAPMaximumRetriesError,
    ldap_errors.LDAPStartTLSError,  # e.g. a certificate that does not verify
)
# An open connection broke (server restarted, failed over): reconnect once.
COMMUNICATION_ERRORS = (
    ldap_errors.LDAPCommunicationError,
    ldap_errors.LDAPResponseTimeoutError,
    ldap_errors.LDAPBusyResult,
    ldap_errors.LDAPUnavailableResult,
)
_RESULT_ERRORS = (
    (ldap_errors.LDAPEntryAlreadyExistsResult, EntryExists),
    (ldap_errors.LDAPNoSuchObjectResult, NoSuchEntry),
    (ldap_errors.LDAPNoSuchAttributeResult, StateConflict),
    (ldap_errors.LDAPAttributeOrValueExistsResult, ValueExists),
    (ldap_errors.LDAPConstraintViolationResult, ConstraintViolation),
)


def translate(exc: ldap_errors.LDAPException) -> DirectoryError:
    """The gateway's own error for an ldap3 error."""
    if isinstance(exc, (*UNREACHABLE_ERRORS, *COMMUNICATION_ERRORS)):
        return DirectoryUnavailable(str(exc))
    for ldap_error, ours in _RESULT_ERRORS:
        if isinstance(exc, ldap_error):
            return ours(str(exc))
    if isinstance(exc, ldap_errors.LDAPBindError):
        return DirectoryError(f"cannot bind to the directory: {exc}")
    return DirectoryError(f"{type(exc).__name__}: {exc}")


class DirectoryConnection:
    """The portal's own connection (its service account) and the DNs of the tree."""

    def __init__(self, urls: Iterable[str], base_dn: str, bind_dn: str, bind_password: str,
                 connect_timeout: float = 5, receive_timeout: float = 10, ca_file: str = "",
                 start_tls: bool = False):
        # ldaps:// and StartTLS verify the server's certificate and name
        # (ldap3 verifies nothing by default), against ca_file if given.
        tls = Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=ca_file or None)
        self._start_tls = start_tls
        servers = [Server(url, get_info=NONE, connect_timeout=connect_timeout, tls=tls)
                   for url in urls]
        # active=1: try each server once per connection attempt instead of
        # ldap3's endless retry; exhaust=False: a server that was down is
        # tried again at the next connection (it may be back already).
        self._pool = ServerPool(servers, FIRST, active=1, exhaust=False)
        self._bind_dn = bind_dn
        self._bind_password = bind_password
        # ldap3 packs it into SO_RCVTIMEO as whole seconds.
        self._receive_timeout = max(1, int(receive_timeout))
        self._local = threading.local()
        self.base_dn = base_dn
        self.people_dn = f"ou=people,{base_dn}"
        self.requests_dn = f"ou=requests,{base_dn}"
        self.institutions_dn = f"ou=institutions,{base_dn}"
        self.groups_dn = f"ou=groups,{base_dn}"
        self.outbox_dn = f"ou=outbox,{base_dn}"
        self.uid_counter_dn = f"cn=uidnumber,ou=counters,{base_dn}"
        self.initial_policy_dn = f"cn=initial,ou=policies,{base_dn}"
        self.default_policy_dn = f"cn=default,ou=policies,{base_dn}"
        # Expired members: every password is past its age (passwords.py).
        self.expired_policy_dn = f"cn=expired,ou=policies,{base_dn}"

    # -- DNs ---------------------------------------------------------------------------

    def person_dn(self, account_name: str) -> str:
        return f"uid={checked_account_name(account_name)},{self.people_dn}"

    def request_dn(self, request_id: str) -> str:
        """A registration is filed under its account name (uid=<name>, which
        makes the name unique); later requests for the same account under
        portalRequestId=<name>-<yyyymmddhhmmss>."""
        if isinstance(request_id, str) and ACCOUNT_NAME_RE.match(request_id):
            return f"uid={request_id},{self.requests_dn}"
        if isinstance(request_id, str) and REQUEST_ID_RE.match(request_id):
            return f"portalRequestId={request_id},{self.requests_dn}"
        raise ValueError("not a valid request id")

    def group_dn(self, name: str) -> str:
        return f"cn={escape_rdn(checked_identifier(name))},{self.groups_dn}"

    def group_name(self, dn: str) -> str:
        """The cn of a group in ou=groups (the DN itself for any other entry)."""
        head, _, parent = dn.partition(",")
        name, equals, value = head.partition("=")
        if equals and name.strip().lower() == "cn" and parent.lower() == self.groups_dn.lower():
            return value
        return dn

    def institution_dn(self, institution_id: str) -> str:
        return f"portalInstitutionId={checked_identifier(institution_id)},{self.institutions_dn}"

    def outbox_entry_dn(self, message_id: str) -> str:
        return f"portalOutboxId={checked_identifier(message_id)},{self.outbox_dn}"

    # -- the portal's connection ---------------------------------------------------------

    def _connection(self) -> Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = self._bound_as_portal()
            self._local.conn = conn
        return conn

    def _bound_as_portal(self) -> Connection:
        """A new connection bound as the portal, raising what ldap3's
        auto_bind raised (the result's own error, or LDAPStartTLSError /
        LDAPBindError for a plain no); closed again on any error."""
        conn = Connection(self._pool, self._bind_dn, self._bind_password, client_strategy=SYNC,
                          raise_exceptions=True, receive_timeout=self._receive_timeout)
        try:
            _open(conn, self._start_tls)
            if not conn.bind(read_server_info=False):
                raise ldap_errors.LDAPBindError(f"bind as the portal refused: {conn.last_error}")
        except BaseException:
            _close(conn)
            raise
        return conn

    def _drop_connection(self, which: str = "conn") -> None:
        """Close this thread's connection (``which``: "conn", the portal's;
        "binder", the one for members' binds); the next use opens another."""
        conn = getattr(self._local, which, None)
        setattr(self._local, which, None)
        if conn is not None:
            _close(conn)

    def _call(self, operation: Callable[[Connection], T]) -> T:
        """Run ``operation`` on this thread's connection, reconnecting once."""
        for attempt in (1, 2):
            try:
                return operation(self._connection())
            except ldap_errors.LDAPException as exc:
                error = translate(exc)
                if isinstance(exc, (*UNREACHABLE_ERRORS, *COMMUNICATION_ERRORS,
                                    ldap_errors.LDAPBindError)):
                    self._drop_connection()
                if attempt == 1 and isinstance(exc, COMMUNICATION_ERRORS) \
                        and not isinstance(exc, UNREACHABLE_ERRORS):
                    log.info("directory connection lost (%s); reconnecting", type(exc).__name__)
                    continue
                raise error from exc
        raise AssertionError("unreachable")

    def _bind_as(self, dn: str, password: bytes, controls: list) -> tuple[bool, dict]:
        """A simple bind as someone else (a member): (succeeded, the result
        with its controls). On this thread's connection for such binds,
        opened once (with StartTLS when configured) and bound again for
        every check, as a service with a persistent connection does: no TCP
        and TLS handshake per login. Used for nothing but these binds; the
        password is not kept on it. Reconnects once when the connection was
        lost; a TLS failure is the directory being unavailable."""
        for attempt in (1, 2):
            try:
                conn = self._binder()
                conn.user, conn.password = dn, password
                try:
                    ok = conn.bind(controls=controls)
                finally:
                    conn.user = conn.password = None
                return bool(ok), conn.result
            except ldap_errors.LDAPException as exc:
                self._drop_connection("binder")
                if attempt == 1 and isinstance(exc, COMMUNICATION_ERRORS) \
                        and not isinstance(exc, UNREACHABLE_ERRORS):
                    continue
                raise translate(exc) from exc
        raise AssertionError("unreachable")

    def _binder(self) -> Connection:
        conn = getattr(self._local, "binder", None)
        if conn is None or conn.closed:
            conn = Connection(self._pool, authentication=SIMPLE, client_strategy=SYNC,
                              raise_exceptions=False, receive_timeout=self._receive_timeout)
            try:
                self._open_for_bind(conn)
            except DirectoryUnavailable:
                _close(conn)
                raise
            self._local.binder = conn
        return conn

    def _open_for_bind(self, conn: Connection) -> None:
        """Open ``conn`` (with StartTLS when configured) for the caller's
        bind; a TLS failure is the directory being unavailable, never a
        wrong password."""
        try:
            _open(conn, self._start_tls)
        except ldap_errors.LDAPException as exc:
            raise DirectoryUnavailable(f"no connection to the directory: {exc}") from exc

    @contextmanager
    def _as(self, dn: str, password: str | bytes,
            raise_errors: bool = False) -> Iterator[Connection]:
        """A connection of its own for someone else (the administrator, for
        service accounts), open but not bound: the caller binds and reads
        the result. Errors are mapped as for the portal's own connection."""
        conn = Connection(self._pool, dn, password, client_strategy=SYNC,
                          raise_exceptions=raise_errors, receive_timeout=self._receive_timeout)
        try:
            self._open_for_bind(conn)
            yield conn
        except ldap_errors.LDAPException as exc:
            raise translate(exc) from exc
        finally:
            _close(conn)

    def _search(self, base: str, search_filter: str, attributes: list[str],
                scope=SUBTREE, size_limit: int = 0, controls: list | None = None) -> list[dict]:
        def run(conn: Connection) -> list[dict]:
            try:
                conn.search(base, search_filter, scope, attributes=attributes,
                            size_limit=size_limit, controls=controls)
            except ldap_errors.LDAPNoSuchObjectResult:
                return []
            return [r for r in conn.response if r.get("type") == "searchResEntry"]
        return self._call(run)

    def _paged_search(self, base: str, search_filter: str, attributes: list[str],
                      page_size: int = 500) -> list[dict]:
        def run(conn: Connection) -> list[dict]:
            entries = conn.extend.standard.paged_search(
                base, search_filter, SUBTREE, attributes=attributes, paged_size=page_size,
                generator=False)
            return [e for e in entries if e.get("type") == "searchResEntry"]
        return self._call(run)

    def _paged_entries(self, base: str, search_filter: str, attributes: list[str],
                       page_size: int = 500) -> Iterator[dict]:
        """The entries of a paged search, one page at a time (memory stays
        one page however many match), on a connection of its own: the
        caller may write through the portal's connection between pages
        without ending the walk."""
        try:
            conn = self._bound_as_portal()
        except ldap_errors.LDAPException as exc:
            raise translate(exc) from exc
        try:
            cookie = None
            while True:
                try:
                    conn.search(base, search_filter, SUBTREE, attributes=attributes,
                                paged_size=page_size, paged_cookie=cookie)
                except ldap_errors.LDAPNoSuchObjectResult:
                    return
                except ldap_errors.LDAPException as exc:
                    raise translate(exc) from exc
                page = [r for r in conn.response if r.get("type") == "searchResEntry"]
                control = (conn.result.get("controls") or {}).get(PAGED_RESULTS_OID) or {}
                cookie = (control.get("value") or {}).get("cookie")
                yield from page
                if not cookie:
                    return
        finally:
            _close(conn)

    def _read(self, dn: str, attributes: list[str]) -> dict | None:
        entries = self._search(dn, "(objectClass=*)", attributes, scope=BASE)
        return entries[0] if entries else None

    def _modify(self, dn: str, changes: dict) -> None:
        self._call(lambda conn: conn.modify(dn, changes))

    def _add(self, dn: str, attributes: dict) -> None:
        self._call(lambda conn: conn.add(dn, attributes=attributes))

    def _modify_and_read(self, dn: str, changes: dict, attributes: list[str],
                         raw: tuple[str, ...] = (), critical: bool = False) -> dict | None:
        """Modify, and the entry as this modify left it; ``raw``: attributes
        whose bytes count (see controls.post_read_entry). ``critical``: the
        values this very modify wrote or nothing (slapd refuses the modify
        if it cannot send them; never a later read)."""
        return self._write_and_read(
            dn, lambda conn, controls: conn.modify(dn, changes, controls=controls),
            attributes, raw, critical)

    def _add_and_read(self, dn: str, entry: dict, attributes: list[str]) -> dict | None:
        """Add, and the entry as added."""
        return self._write_and_read(
            dn, lambda conn, controls: conn.add(dn, attributes=entry, controls=controls),
            attributes)

    def _write_and_read(self, dn: str, write: Callable[[Connection, list], object],
                        attributes: list[str], raw: tuple[str, ...] = (),
                        critical: bool = False) -> dict | None:
        """``write`` with the post-read control (RFC 4527: no second round
        trip), and the entry it answers with, shaped like a search result;
        read again when the answer does not carry it exactly."""
        def run(conn: Connection) -> dict | None:
            write(conn, [post_read_control(attributes, critical)])
            return post_read_entry(dn, conn.result, raw)
        entry = self._call(run)
        if entry is None and critical:
            raise DirectoryError(f"the directory did not return {dn} as written")
        return entry or self._read(dn, attributes)

    def _delete(self, dn: str) -> None:
        self._call(lambda conn: conn.delete(dn))

    def ping(self) -> str:
        """Bind (if needed) and ask who we are; for ``flask portal check``."""
        return self._call(lambda conn: conn.extend.standard.who_am_i() or "")

    def missing_features(self) -> list[str]:
        """What the portal's writes need that the server does not announce in
        its root DSE (``flask portal check``): the post-read control and the
        modify-increment (uid numbers are taken with both)."""
        entries = self._search("", "(objectClass=*)", ["supportedControl", "supportedFeatures"],
                               scope=BASE)
        found = entries[0]["attributes"] if entries else {}
        announced = {str(v) for name in ("supportedControl", "supportedFeatures")
                     for v in found.get(name) or []}
        return [name for oid, name in ((POST_READ_OID, "the post-read control (RFC 4527)"),
                                       (MODIFY_INCREMENT_OID, "modify-increment (RFC 4525)"))
                if oid not in announced]


def _open(conn: Connection, start_tls: bool) -> None:
    """Open ``conn`` with TCP_NODELAY (without it a request written right
    after the TLS handshake waits 40 ms for the server's delayed ACK), then
    StartTLS when asked; a StartTLS answered no is LDAPStartTLSError."""
    conn.open(read_server_info=False)
    if conn.socket is not None and conn.socket.family != socket.AF_UNIX:
        conn.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if start_tls and not conn.start_tls(read_server_info=False):
        raise ldap_errors.LDAPStartTLSError(f"StartTLS failed: {conn.last_error}")


def _close(conn: Connection) -> None:
    try:
        conn.unbind()
    except ldap_errors.LDAPException as exc:
        log.debug("closing a directory connection: %s", exc)
