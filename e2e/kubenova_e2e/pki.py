"""Certificates for the local control plane, made with `cryptography`.

EC P-256 keys (fast to make) for everything but the ServiceAccount signing key, which
is RSA: every apiserver release accepts it for both signing and verifying tokens.
Everything is valid for a year and backdated an hour, so a clock that is a little
behind (a VM resumed from a snapshot) does not reject a certificate made a second ago.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALIDITY = dt.timedelta(days=365)


def _key_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@dataclass
class CA:
    """A self-signed authority that issues leaf certificates in memory."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @classmethod
    def create(cls, common_name: str) -> CA:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert)

    def issue(
        self,
        common_name: str,
        *,
        organizations: tuple[str, ...] = (),
        hosts: tuple[str, ...] = (),
        server: bool = False,
        client: bool = True,
    ) -> tuple[bytes, bytes]:
        """A leaf certificate and key, PEM."""
        key = ec.generate_private_key(ec.SECP256R1())
        attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
        usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + (
            [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
        )
        now = dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(attrs))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        )
        if hosts:
            names: list[x509.GeneralName] = []
            for host in hosts:
                try:
                    names.append(x509.IPAddress(ipaddress.ip_address(host)))
                except ValueError:
                    names.append(x509.DNSName(host))
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return _key_pem(self.key)


def write_pair(directory: Path, name: str, cert: bytes, key: bytes) -> tuple[Path, Path]:
    """`<name>.crt` and `<name>.key` (owner-only, as the components warn otherwise)."""
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(cert)
    key_path.write_bytes(key)
    key_path.chmod(0o600)
    return cert_path, key_path


def service_account_keys(directory: Path) -> tuple[Path, Path]:
    """The ServiceAccount token signing key (private) and its public half."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private, public = directory / "sa.key", directory / "sa.pub"
    private.write_bytes(_key_pem(key))
    private.chmod(0o600)
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


APISERVER_HOSTS = (
    "127.0.0.1",
    "localhost",
    "10.0.0.1",  # the `kubernetes` Service's ClusterIP, first address of 10.0.0.0/24
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)


class ClusterPKI:
    """Where each file of a cluster's PKI lives in `directory`.

    The paths are fixed by the directory alone, so a control plane can name them (in
    flags, in kubeconfigs) before `generate()` has written anything.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = d = directory
        self.ca_cert, self.ca_key = d / "ca.crt", d / "ca.key"
        self.apiserver_cert, self.apiserver_key = d / "apiserver.crt", d / "apiserver.key"
        self.admin_cert, self.admin_key = d / "admin.crt", d / "admin.key"
        self.front_proxy_ca = d / "front-proxy-ca.crt"
        self.front_proxy_cert = d / "front-proxy-client.crt"
        self.front_proxy_key = d / "front-proxy-client.key"
        self.sa_private, self.sa_public = d / "sa.key", d / "sa.pub"

    def component(self, name: str) -> tuple[Path, Path]:
        """The client certificate and key of `kube-controller-manager` or `kube-scheduler`."""
        return self.directory / f"{name}.crt", self.directory / f"{name}.key"

    def generate(self) -> None:
        """Make every key and certificate the control plane needs and write them as PEM."""
        self.directory.mkdir(parents=True, exist_ok=True)
        ca = CA.create("kubenova-local-ca")
        write_pair(self.directory, "ca", ca.cert_pem, ca.key_pem)
        write_pair(
            self.directory,
            "apiserver",
            *ca.issue("kube-apiserver", hosts=APISERVER_HOSTS, server=True, client=False),
        )
        # system:masters is bound to cluster-admin without any RBAC object existing yet.
        write_pair(
            self.directory, "admin", *ca.issue("kubenova-admin", organizations=("system:masters",))
        )
        # The CNs are the users the apiserver's bootstrap RBAC policy already grants to.
        for name in ("kube-controller-manager", "kube-scheduler"):
            write_pair(self.directory, name, *ca.issue(f"system:{name}"))
        # Aggregation: the apiserver proves itself to extension servers with the
        # front-proxy client certificate, which they trust through a separate CA.
        front = CA.create("kubenova-front-proxy-ca")
        write_pair(self.directory, "front-proxy-ca", front.cert_pem, front.key_pem)
        write_pair(self.directory, "front-proxy-client", *front.issue("front-proxy-client"))
        service_account_keys(self.directory)
