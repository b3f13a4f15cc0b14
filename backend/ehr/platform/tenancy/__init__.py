"""Tenants: one row in ``tenants`` and one HAPI partition each (see docs/adr/0007)."""

from ehr.platform.tenancy.dependencies import TenantDep, TenantFhirDep
from ehr.platform.tenancy.service import (
    InvalidTenantSlug,
    TenantNotFound,
    create_tenant,
    disable_tenant,
    enable_tenant,
    get_tenant_by_slug,
    list_tenants,
    validate_slug,
)

__all__ = [
    "InvalidTenantSlug",
    "TenantDep",
    "TenantFhirDep",
    "TenantNotFound",
    "create_tenant",
    "disable_tenant",
    "enable_tenant",
    "get_tenant_by_slug",
    "list_tenants",
    "validate_slug",
]
