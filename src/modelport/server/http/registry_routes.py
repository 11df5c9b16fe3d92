"""The ``/api/registry`` route table, appended to the control plane's (``control``)."""

from __future__ import annotations

from modelport.server.http import registry_models as models
from modelport.server.http import registry_signatures as signatures
from modelport.server.http import registry_stats as stats
from modelport.server.http import registry_transfer as transfer
from modelport.server.http import registry_validate as validate
from modelport.server.http import registry_verify as verify
from modelport.server.http import registry_versions as versions
from modelport.server.http.app import RouteTable

_VERSION = "/api/registry/models/{name}/versions/{version}"

REGISTRY_ROUTES: RouteTable = (
    ("/api/registry/models", ("GET",), models.ApiRegistryModels),
    ("/api/registry/models/{name}", ("GET", "PATCH", "DELETE"), models.ApiRegistryModel),
    ("/api/registry/models/{name}/tags", ("POST",), models.ApiRegistryModelTags),
    ("/api/registry/models/{name}/aliases/{alias}", ("PUT", "DELETE"), models.ApiRegistryAlias),
    ("/api/registry/models/{name}/versions", ("GET", "POST"), versions.ApiRegistryVersions),
    (_VERSION, ("GET", "DELETE"), versions.ApiRegistryVersion),
    (f"{_VERSION}/tags", ("POST", "DELETE"), versions.ApiRegistryVersionTags),
    (f"{_VERSION}/archive", ("POST",), versions.ApiRegistryArchive),
    (f"{_VERSION}/promote", ("POST",), versions.ApiRegistryPromote),
    (f"{_VERSION}/manifest", ("GET",), versions.ApiRegistryManifest),
    (f"{_VERSION}/reference-stats", ("GET",), versions.ApiRegistryReferenceStats),
    (f"{_VERSION}/files", ("GET",), transfer.ApiRegistryFiles),
    (f"{_VERSION}/file", ("GET",), transfer.ApiRegistryFile),
    (f"{_VERSION}/stats", ("POST",), stats.ApiRegistryStats),
    (f"{_VERSION}/signature", ("GET", "POST"), signatures.ApiRegistrySignature),
    (f"{_VERSION}/validate", ("POST",), validate.ApiRegistryValidate),
    (f"{_VERSION}/verify", ("POST",), verify.ApiRegistryVerify),
    ("/api/registry/versions", ("GET",), models.ApiRegistrySearch),
    ("/api/registry/resolve", ("GET",), models.ApiRegistryResolve),
    ("/api/registry/audit", ("GET",), models.ApiRegistryAudit),
)
