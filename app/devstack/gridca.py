"""A Grid-like certification authority for the dev stack and the tests
(the ``cryptography`` package): a CA, a server certificate for nginx and
client certificates (PEM and PKCS#12), valid, expired or from another CA."""
from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_NAME_OIDS = {"C": NameOID.COUNTRY_NAME, "O": NameOID.ORGANIZATION_NAME,
              "OU": NameOID.ORGANIZATIONAL_UNIT_NAME, "CN": NameOID.COMMON_NAME,
              "emailAddress": NameOID.EMAIL_ADDRESS, "DC": NameOID.DOMAIN_COMPONENT}


def name(*parts: tuple[str, str]) -> x509.Name:
    """An X.509 name from (type, value) pairs, most general first
    (("C", "JP"), ("O", "KEK"), ("CN", "Toru Iijima"))."""
    return x509.Name([x509.NameAttribute(_NAME_OIDS[k], v) for k, v in parts])


@dataclass
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def subject_dn(self) -> str:
        return self.cert.subject.rfc4514_string()

    @property
    def issuer_dn(self) -> str:
        return self.cert.issuer.rfc4514_string()

    def write(self, folder: Path, stem: str, p12_password: str | None = None) -> dict[str, Path]:
        """<stem>.pem, <stem>.key (0600) and, with a password, <stem>.p12."""
        folder.mkdir(parents=True, exist_ok=True)
        paths = {"cert": folder / f"{stem}.pem", "key": folder / f"{stem}.key"}
        paths["cert"].write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        old = os.umask(0o077)
        try:
            paths["key"].write_bytes(self.key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()))
            if p12_password is not None:
                paths["p12"] = folder / f"{stem}.p12"
                paths["p12"].write_bytes(pkcs12.serialize_key_and_certificates(
                    stem.encode(), self.key, self.cert, None,
                    serialization.BestAvailableEncryption(p12_password.encode())))
        finally:
            os.umask(old)
        return paths


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class GridCA:
    def __init__(self, subject: x509.Name, days: int = 3650):
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        self.cert = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                         False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()),
                           critical=False)
            .sign(self.key, hashes.SHA256()))

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        return path

    def issue(self, subject: x509.Name, *, server_names: tuple[str, ...] = (),
              not_before: dt.datetime | None = None,
              not_after: dt.datetime | None = None) -> Issued:
        """A client certificate (or, with ``server_names``, a server one)."""
        import ipaddress
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        builder = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(self.cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_before or now - dt.timedelta(hours=1))
            .not_valid_after(not_after or now + dt.timedelta(days=395))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self.key.public_key()), critical=False))
        if server_names:
            alt = []
            for host in server_names:
                try:
                    alt.append(x509.IPAddress(ipaddress.ip_address(host)))
                except ValueError:
                    alt.append(x509.DNSName(host))
            builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False) \
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                               critical=False)
        else:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        return Issued(builder.sign(self.key, hashes.SHA256()), key)


def expired_window() -> tuple[dt.datetime, dt.datetime]:
    """Validity of a certificate that expired a month ago."""
    now = _now()
    return now - dt.timedelta(days=400), now - dt.timedelta(days=30)
