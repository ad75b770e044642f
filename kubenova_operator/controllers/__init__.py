"""kopf handlers, one module per kind. Importing this package registers them."""

from . import children, project, tenant

__all__ = ["children", "project", "tenant"]
