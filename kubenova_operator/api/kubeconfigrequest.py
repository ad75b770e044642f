"""KubeConfigRequest: a short-lived, rotated, revocable kubeconfig."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import ConfigDict, Field

from . import validation as V
from .common import (
    AGE_COLUMN,
    DNS_LABEL,
    READY_COLUMN,
    REASON_COLUMN,
    CustomResource,
    KubeModel,
    PrinterColumn,
    ResourceInfo,
    StatusBase,
    cel,
)
from .tenant import MAX_TOKEN_TTL_SECONDS, MIN_TOKEN_TTL_SECONDS

# Secrets Kubenova writes in a tenant's owner namespace, which no request may name as
# its delivery Secret: the tenant's default kubeconfigs (written by the requests
# default-owner and default-readonly), the Secret each request's tokens are bound to
# (credentials/tokens.py binding_secret_name) and the legacy token Secret
# (legacy_secret_name).
DEFAULT_KUBECONFIG_SECRET = "kubenova-kubeconfigs"
DEFAULT_REQUESTS = ("default-owner", "default-readonly")
RESERVED_SECRET_SUFFIXES = ("-token-binding", "-legacy-token")
# Longest request name: it labels the Secret its tokens are bound to
# (kubenova.io/kubeconfig-request), and a label value has at most 63 characters.
MAX_REQUEST_NAME = 63
# The kubeconfig's key in the Secret also names the annotations
# kubenova.io/<key>.issued-at and kubenova.io/<key>.expires-at: a qualified name's
# name part (at most 63 characters, beginning with a letter or digit).
MAX_SECRET_KEY = 63 - len(".expires-at")


class CredentialRole(StrEnum):
    OWNER = "owner"
    READONLY = "readonly"
    DEVELOPER = "developer"


class DeliveryMode(StrEnum):
    SECRET = "Secret"
    ENCRYPTED = "Encrypted"


class Rotation(KubeModel):
    renew_before_percent: int = Field(
        default=33,
        ge=1,
        le=90,
        description="Re-issue the token when this share of its lifetime is left.",
    )


class CredentialDelivery(KubeModel):
    mode: DeliveryMode = Field(
        default=DeliveryMode.SECRET,
        description="Secret: the kubeconfig is written to a Secret in the request's "
        "namespace. Encrypted: it is encrypted to spec.recipientPublicKey and written to "
        "status.kubeconfig; nothing readable is stored.",
    )
    secret_name: str | None = Field(
        default=None,
        max_length=253,
        pattern=V.DNS_SUBDOMAIN,
        description="The Secret to write (mode Secret). Defaults to `<request>-kubeconfig`. "
        f"Names Kubenova uses itself are refused: {DEFAULT_KUBECONFIG_SECRET} (but for "
        f"the tenant's {' and '.join(DEFAULT_REQUESTS)} requests) and names ending in "
        f"{' or '.join(RESERVED_SECRET_SUFFIXES)}.",
    )
    secret_key: str = Field(
        default="kubeconfig",
        max_length=MAX_SECRET_KEY,
        pattern=rf"^[A-Za-z0-9][-._A-Za-z0-9]{{0,{MAX_SECRET_KEY - 1}}}$",
        description="The key of the Secret the kubeconfig is written under: letters, "
        f"digits, '-', '_' and '.', beginning with a letter or digit, at most "
        f"{MAX_SECRET_KEY} characters (it also names the Secret's annotations "
        "kubenova.io/<key>.issued-at and .expires-at).",
    )


class KubeConfigRequestSpec(KubeModel):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.role != 'developer' || has(self.project)",
                    "a developer kubeconfig needs spec.project",
                    ".project",
                ),
                cel(
                    "self.role == 'developer' || !has(self.project)",
                    "spec.project applies to developer kubeconfigs only",
                    ".project",
                ),
                cel(
                    "!has(self.delivery) || self.delivery.mode != 'Encrypted' || "
                    "has(self.recipientPublicKey)",
                    "Encrypted delivery needs spec.recipientPublicKey",
                    ".recipientPublicKey",
                ),
            ]
        }
    )

    role: CredentialRole = Field(
        description="owner: the tenant's owner; readonly: read everything but Secrets; "
        "developer: an app user of spec.project."
    )
    project: str | None = Field(
        default=None,
        max_length=61,
        pattern=DNS_LABEL,
        description="The Project (in the same namespace) for a developer kubeconfig.",
    )
    ttl_seconds: int | None = Field(
        default=None,
        ge=MIN_TOKEN_TTL_SECONDS,
        le=MAX_TOKEN_TTL_SECONDS,
        alias="ttlSeconds",
        description="Token lifetime; bounded by the tenant's spec.credentials.maxTTLSeconds. "
        "Defaults to the tenant's defaultTTLSeconds.",
    )
    rotation: Rotation = Field(default_factory=Rotation)
    delivery: CredentialDelivery = Field(default_factory=CredentialDelivery)
    recipient_public_key: str | None = Field(
        default=None,
        max_length=16384,
        description="A PEM X25519 public key to encrypt the kubeconfig to (HPKE, RFC "
        "9180). Create one with `kubenova keygen`.",
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.trim().startsWith('-----BEGIN PUBLIC KEY-----') && "
                    "self.trim().endsWith('-----END PUBLIC KEY-----')",
                    "recipientPublicKey must be a PEM public key (-----BEGIN PUBLIC "
                    "KEY-----), as `kubenova keygen` writes it",
                )
            ]
        },
    )
    revoked: bool = Field(
        default=False,
        description="Set to true to invalidate every token ever issued for this request.",
    )
    reissue: str | None = Field(
        default=None,
        max_length=253,
        description="Change this value (e.g. to a timestamp) to get a fresh token now.",
    )


class KubeConfigRequestStatus(StatusBase):
    issued_at: datetime | None = Field(
        default=None, description="When the token in use was issued."
    )
    expires_at: datetime | None = Field(default=None, description="When it expires.")
    rotations: int = Field(default=0, description="How many times the token was re-issued.")
    server: str | None = Field(default=None, description="The API endpoint in the kubeconfig.")
    secret_name: str | None = Field(default=None, description="Where the kubeconfig is.")
    token_source: str | None = Field(
        default=None, description="Where the token came from: the TokenRequest API."
    )
    kubeconfig: str | None = Field(
        default=None,
        description="The kubeconfig encrypted to spec.recipientPublicKey (Encrypted "
        "delivery). Decrypt with `kubenova decrypt`.",
    )


class KubeConfigRequest(CustomResource):
    """A short-lived, rotated, revocable kubeconfig for a tenant's owner, readers or app
    users."""

    info = ResourceInfo(
        kind="KubeConfigRequest",
        plural="kubeconfigrequests",
        singular="kubeconfigrequest",
        scope="Namespaced",
        short_names=["kcr"],
        description="A short-lived, rotated, revocable kubeconfig. Lives in the tenant's "
        "owner namespace.",
        validations=[
            cel(
                f"size(self.metadata.name) <= {MAX_REQUEST_NAME}",
                f"a KubeConfigRequest name may have at most {MAX_REQUEST_NAME} characters: "
                "it labels the Secret its tokens are bound to",
            ),
            cel(
                "!has(self.spec.delivery) || !has(self.spec.delivery.secretName) || "
                f"self.spec.delivery.secretName != '{DEFAULT_KUBECONFIG_SECRET}' || "
                f"self.metadata.name in {V.cel_list(DEFAULT_REQUESTS)}",
                f"Secret {DEFAULT_KUBECONFIG_SECRET} holds the tenant's default "
                "kubeconfigs (requests default-owner and default-readonly); deliver to "
                "another Secret",
                ".spec.delivery.secretName",
            ),
            cel(
                "!has(self.spec.delivery) || !has(self.spec.delivery.secretName) || "
                + " && ".join(
                    f"!self.spec.delivery.secretName.endsWith('{suffix}')"
                    for suffix in RESERVED_SECRET_SUFFIXES
                ),
                "Secrets named <request>-token-binding and <request>-legacy-token are "
                "Kubenova's (every token of a request is bound to the first); deliver to "
                "another Secret",
                ".spec.delivery.secretName",
            ),
        ],
        printer_columns=[
            PrinterColumn(name="Role", type="string", json_path=".spec.role"),
            PrinterColumn(name="Project", type="string", json_path=".spec.project"),
            READY_COLUMN,
            # A string, not a date: kubectl prints future dates as "<invalid>".
            PrinterColumn(name="Expires", type="string", json_path=".status.expiresAt"),
            PrinterColumn(
                name="Rotations", type="integer", json_path=".status.rotations", priority=1
            ),
            REASON_COLUMN,
            AGE_COLUMN,
        ],
    )

    spec: KubeConfigRequestSpec
    status: KubeConfigRequestStatus = Field(default_factory=KubeConfigRequestStatus)
