"""kopf handlers, one module per kind. Importing this package registers them."""

from . import children, integrations, kubeconfigrequest, project, tenant

__all__ = ["children", "integrations", "kubeconfigrequest", "project", "tenant"]
