"""The client certificate, as the TLS terminator in front of gunicorn
passes it on (config/nginx/portal.conf; README, "Grid user certificates").

The header contract: nginx verifies the certificate against the configured
CA bundle and sets, on every request, overwriting whatever the client sent,

- ``X-SSL-Client-Verify``: ``$ssl_client_verify`` (``SUCCESS``, ``NONE``,
  ``FAILED:<reason>``),
- ``X-SSL-Client-S-DN``: ``$ssl_client_s_dn`` (subject, RFC 2253),
- ``X-SSL-Client-I-DN``: ``$ssl_client_i_dn`` (issuer, RFC 2253).

The portal believes them (and X-Forwarded-*) only when the connection
comes from one of PORTAL_TRUSTED_PROXIES, and a certificate only when the
verify header says SUCCESS. From any other peer these headers are removed
before the app sees the request (``TrustedProxies``, outside ProxyFix)."""
from __future__ import annotations

import ipaddress
from typing import Iterable

from flask import request

from ..directory import Certificate
from ..services.certificates import usable

VERIFY_HEADER = "X-SSL-Client-Verify"
SUBJECT_HEADER = "X-SSL-Client-S-DN"
ISSUER_HEADER = "X-SSL-Client-I-DN"
VERIFIED = "SUCCESS"
TRUSTED = "portal.trusted_proxy"  # WSGI environ: the peer is a trusted proxy
_STRIPPED = ("HTTP_X_FORWARDED_", "HTTP_X_SSL_CLIENT_", "HTTP_FORWARDED")


class TrustedProxies:
    """WSGI middleware, outermost: a request whose peer (REMOTE_ADDR, the
    TCP connection) is not a trusted proxy loses every forwarded and
    client-certificate header, so neither ProxyFix nor the portal sees any."""

    def __init__(self, app, networks: Iterable):
        self.app = app
        self.networks = tuple(networks)

    def trusted(self, peer: str) -> bool:
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in network for network in self.networks
                   if network.version == address.version)

    def __call__(self, environ, start_response):
        trusted = self.trusted(environ.get("REMOTE_ADDR", ""))
        environ[TRUSTED] = trusted
        if not trusted:
            for key in [k for k in environ if k.startswith(_STRIPPED)]:
                del environ[key]
        return self.app(environ, start_response)


def presented_certificate() -> Certificate | None:
    """The client certificate of this request, verified by the trusted TLS
    terminator; None without one (or from anyone else)."""
    if not request.environ.get(TRUSTED):
        return None
    if request.headers.get(VERIFY_HEADER, "").strip() != VERIFIED:
        return None
    return usable(request.headers.get(SUBJECT_HEADER, ""),
                  request.headers.get(ISSUER_HEADER, ""))


def verify_result() -> str:
    """What the terminator said about a certificate ("" when nothing was
    said or may not be believed): NONE, SUCCESS or FAILED:<reason>."""
    if not request.environ.get(TRUSTED):
        return ""
    return request.headers.get(VERIFY_HEADER, "").strip()[:200]
