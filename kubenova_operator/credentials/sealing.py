"""Encrypted kubeconfig delivery with HPKE (RFC 9180).

The requester keeps an X25519 private key and puts the public key in
`spec.recipientPublicKey`; Kubenova seals the kubeconfig to it (HPKE base mode,
DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM) and writes the result, base64, to
`status.kubeconfig`. Only the holder of the private key can read it; nothing usable is
stored in the cluster. `kubenova keygen` and `kubenova decrypt` are the other half.
"""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives import hpke, serialization
from cryptography.hazmat.primitives.asymmetric import x25519

SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
# Binds a ciphertext to its purpose: a sealed kubeconfig cannot be passed off as
# anything else sealed to the same key.
INFO = b"kubenova.io/v1alpha1 kubeconfig"
PREFIX = "hpke-x25519-sha256-aes256gcm:"


class InvalidPublicKey(ValueError):
    pass


def load_public_key(pem: str) -> x25519.X25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except (ValueError, TypeError) as exc:
        raise InvalidPublicKey("spec.recipientPublicKey is not a PEM public key") from exc
    if not isinstance(key, x25519.X25519PublicKey):
        raise InvalidPublicKey(
            f"spec.recipientPublicKey is a {type(key).__name__.removesuffix('PublicKey')} key; "
            "an X25519 key is required (make one with `kubenova keygen`)"
        )
    return key


def seal(plaintext: bytes, public_key_pem: str) -> str:
    ciphertext = SUITE.encrypt(plaintext, load_public_key(public_key_pem), info=INFO)
    return PREFIX + base64.b64encode(ciphertext).decode()


def open_sealed(sealed: str, private_key_pem: bytes) -> bytes:
    if not sealed.startswith(PREFIX):
        raise ValueError("not a Kubenova sealed kubeconfig")
    key = serialization.load_pem_private_key(private_key_pem, password=None)
    if not isinstance(key, x25519.X25519PrivateKey):
        raise ValueError("the private key is not an X25519 key")
    return SUITE.decrypt(base64.b64decode(sealed.removeprefix(PREFIX)), key, info=INFO)


def generate_keypair() -> tuple[bytes, str]:
    """(private key PEM, public key PEM)."""
    key = x25519.X25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public.decode()
