"""kopf handlers, one module per kind. Importing this package registers them."""

from . import children, kubeconfigrequest, project, tenant

__all__ = ["children", "kubeconfigrequest", "project", "tenant"]
