"""kopf handlers, one module per kind. Importing this package registers them."""

from . import capsulesync, children, kubeconfigrequest, project, tenant, uninstall, velasync

__all__ = [
    "capsulesync",
    "children",
    "kubeconfigrequest",
    "project",
    "tenant",
    "uninstall",
    "velasync",
]
