"""The shim's TLS: its serving certificate and the client CA it trusts, swappable
without a restart.

Serving certificate, in order of preference:
- mounted files (`KUBENOVA_SHIM_CERT_DIR` with tls.crt/tls.key, e.g. from cert-manager),
  re-read when they change;
- else a CA and certificate Kubenova generates with `cryptography` and keeps in the
  Secret `kubenova-api-tls` of its namespace, shared by all replicas and renewed 30
  days before expiry. Its CA goes into the APIService's caBundle.

New connections pick up the current SSLContext through the SNI callback, so a rotated
certificate or requestheader CA takes effect without dropping the listener.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from ..kube.client import Kube

SECRET_NAME = "kubenova-api-tls"
RENEW_BEFORE = dt.timedelta(days=30)


@dataclass(frozen=True)
class ServingMaterial:
    cert_pem: bytes
    key_pem: bytes
    ca_pem: bytes | None  # None when the certificate is managed elsewhere (mounted)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def generate(hosts: list[str]) -> ServingMaterial:
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("kubenova-api-ca"))
        .issuer_name(_name("kubenova-api-ca"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return ServingMaterial(
        cert.public_bytes(pem),
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        ca.public_bytes(pem),
    )


def needs_renewal(cert_pem: bytes, hosts: list[str]) -> bool:
    cert = x509.load_pem_x509_certificate(cert_pem)
    if cert.not_valid_after_utc - dt.datetime.now(dt.UTC) < RENEW_BEFORE:
        return True
    try:
        names = set(
            cert.extensions.get_extension_for_class(
                x509.SubjectAlternativeName
            ).value.get_values_for_type(x509.DNSName)
        )
    except x509.ExtensionNotFound:
        return True
    return not {h for h in hosts if not h[0].isdigit()} <= names


async def shared_material(kube: Kube, namespace: str, hosts: list[str]) -> ServingMaterial:
    """The generated material from the shared Secret, creating or renewing it."""
    core = client.CoreV1Api(kube.api)
    try:
        secret = await core.read_namespaced_secret(SECRET_NAME, namespace)
        data = {k: base64.b64decode(v) for k, v in (secret.data or {}).items()}
        if not needs_renewal(data["tls.crt"], hosts):
            return ServingMaterial(data["tls.crt"], data["tls.key"], data["ca.crt"])
        exists = True
    except (ApiException, KeyError) as exc:
        if isinstance(exc, ApiException) and exc.status != 404:
            raise
        exists = isinstance(exc, KeyError)
    material = generate(hosts)
    body = client.V1Secret(
        metadata=client.V1ObjectMeta(
            name=SECRET_NAME, labels={"app.kubernetes.io/managed-by": "kubenova"}
        ),
        type="kubernetes.io/tls",
        data={
            "tls.crt": base64.b64encode(material.cert_pem).decode(),
            "tls.key": base64.b64encode(material.key_pem).decode(),
            "ca.crt": base64.b64encode(material.ca_pem or b"").decode(),
        },
    )
    try:
        if exists:
            await core.replace_namespaced_secret(SECRET_NAME, namespace, body)
        else:
            await core.create_namespaced_secret(namespace, body)
    except ApiException as exc:
        if exc.status != 409:
            raise
        return await shared_material(kube, namespace, hosts)  # another replica won
    return material


def mounted_material(cert_dir: Path) -> ServingMaterial:
    return ServingMaterial(
        (cert_dir / "tls.crt").read_bytes(), (cert_dir / "tls.key").read_bytes(), None
    )


class ContextHolder:
    """Holds the current server SSLContext; the listener's context delegates to it."""

    def __init__(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="kubenova-shim-tls-"))
        self.current: ssl.SSLContext | None = None
        self._fingerprint: tuple[bytes, bytes, str] | None = None

    def update(self, material: ServingMaterial, client_ca: str) -> bool:
        fingerprint = (material.cert_pem, material.key_pem, client_ca)
        if fingerprint == self._fingerprint:
            return False
        cert, key = self._dir / "tls.crt", self._dir / "tls.key"
        cert.write_bytes(material.cert_pem)
        key.touch(mode=0o600)
        key.write_bytes(material.key_pem)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        context.load_verify_locations(cadata=client_ca)
        context.verify_mode = ssl.CERT_OPTIONAL
        self.current = context
        self._fingerprint = fingerprint
        return True

    def listener_context(self) -> ssl.SSLContext:
        """The context the socket is created with: it hands each new connection to
        whatever context is current."""
        assert self.current is not None
        base = self.current

        def pick(sock: Any, _server_name: str | None, _ctx: ssl.SSLContext) -> None:
            if self.current is not None and sock.context is not self.current:
                sock.context = self.current

        base.sni_callback = pick
        return base
