"""KubeConfigRequest: a short-lived, rotated, revocable kubeconfig."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import ConfigDict, Field

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
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        description="The Secret to write (mode Secret). Defaults to `<request>-kubeconfig`.",
    )
    secret_key: str = Field(
        default="kubeconfig",
        max_length=253,
        pattern=r"^[-._a-zA-Z0-9]+$",
        description="The key of the Secret the kubeconfig is written under.",
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
