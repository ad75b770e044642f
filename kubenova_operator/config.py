"""Operator settings, from environment variables (KUBENOVA_*)."""

from __future__ import annotations

import socket
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KUBENOVA_", extra="ignore")

    namespace: str = Field(
        default="kubenova-system",
        description="Where the operator runs: its Lease and Events about itself live here.",
    )
    pod_name: str = Field(default_factory=socket.gethostname)
    metrics_port: int = 8080
    health_port: int = 8081
    bind_address: str = "0.0.0.0"
    log_format: Literal["json", "text"] = "json"
    log_level: str = "INFO"
    service_account: str = Field(
        default="kubenova-operator",
        description="The operator's own ServiceAccount (in `namespace`): held, with its "
        "ClusterRole and ClusterRoleBinding, until the operator has let go of the tenants "
        "in an uninstall (controllers/uninstall.py).",
    )
    leader_election: bool = True
    lease_name: str = "kubenova-operator"
    lease_seconds: int = Field(
        default=15,
        gt=0,
        description="Leader Lease duration: a standby takes over this long after it last "
        "saw the leader renew (the failover time after a crash).",
    )
    lease_renew_seconds: int = Field(
        default=10, gt=0, description="A leader that cannot renew for this long stops."
    )
    lease_retry_seconds: int = Field(
        default=2, gt=0, description="How often the Lease is renewed, or tried by a standby."
    )
    resync_seconds: float = Field(
        default=60.0, gt=0, description="How often each parent re-checks its children."
    )
    relist_seconds: float = Field(
        default=300.0,
        gt=0,
        description="How often the children are re-listed to catch deletions no watch "
        "event reported (the first time one resync period after start-up).",
    )
    credential_check_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How soon a KubeConfigRequest waiting for something its tenant "
        "builds (a ServiceAccount, a Project's namespaces) is looked at again.",
    )
    app_stuck_seconds: float = Field(
        default=600.0,
        gt=0,
        description="A KubeVela Application whose workflow runs longer than this is "
        "reported as stuck (failing).",
    )
    shim_enabled: bool = Field(default=True, description="Serve the aggregated API.")
    shim_port: int = Field(default=8443, description="The aggregated API's HTTPS port.")
    shim_service_name: str = "kubenova-api"
    shim_service_port: int = Field(
        default=443, description="The port the APIService's Service exposes the shim on."
    )
    shim_cert_dir: str | None = Field(
        default=None, description="A directory with tls.crt/tls.key (e.g. from cert-manager)."
    )
    shim_refresh_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How often the serving certificate and requestheader CA are re-read.",
    )
    shim_unregister_on_exit: bool = Field(
        default=False,
        description="Delete the APIService when the leader stops (single-process "
        "setups), so the group leaves discovery instead of showing as unavailable.",
    )
    capsule_proxy_url: str | None = Field(
        default=None, description="The cluster-default capsule-proxy URL for kubeconfigs."
    )
    capsule_proxy_ca_secret: str | None = Field(
        default=None, description="namespace/name of a Secret whose ca.crt is the proxy CA."
    )
    capsule_configuration: str = Field(
        default="default",
        description="The CapsuleConfiguration Capsule runs with (its "
        "--configuration-name): Kubenova adds its tenants' groups to its spec.users.",
    )
    api_server_url: str | None = Field(
        default=None,
        description="The API server URL put in kubeconfigs when no proxy is in use; "
        "defaults to the one the operator talks to.",
    )
    system_owner_groups: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["kubenova:admins", "kubenova:ops"]
    )

    @field_validator("system_owner_groups", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
