"""The aggregated API (`api.kubenova.io/v1alpha1`): answers computed per request and
authorised per caller, behind the API server's own authentication.

- `tenantusages` (cluster-scoped, get/list): a tenant's usage against its budget, live.
- `kubeconfigs` (namespaced, get): a kubeconfig minted on demand for a KubeConfigRequest.
"""

GROUP = "api.kubenova.io"
VERSION = "v1alpha1"
GROUP_VERSION = f"{GROUP}/{VERSION}"
