"""The Kubenova API (`kubenova.io/v1alpha1`): pydantic models that are the CRDs."""

from .capsulesync import CapsuleSync
from .common import API_VERSION, GROUP, VERSION, Condition, CustomResource, Subject
from .kubeconfigrequest import KubeConfigRequest
from .project import Project
from .tenant import Tenant
from .velasync import VelaSync

ALL_KINDS: tuple[type[CustomResource], ...] = (
    Tenant,
    Project,
    KubeConfigRequest,
    CapsuleSync,
    VelaSync,
)

__all__ = [
    "ALL_KINDS",
    "API_VERSION",
    "GROUP",
    "VERSION",
    "CapsuleSync",
    "Condition",
    "CustomResource",
    "KubeConfigRequest",
    "Project",
    "Subject",
    "Tenant",
    "VelaSync",
]
