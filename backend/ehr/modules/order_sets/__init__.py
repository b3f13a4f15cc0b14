"""Order sets: per-tenant definitions (FHIR PlanDefinition, type order-set) whose members are
order documents of the orders module, a few cited starter sets shipped as reviewable data, and
instantiation for a patient as ONE transaction: a RequestGroup and every member as a draft order
(ADR 0021).

The public surface (other modules and the entrypoints import only this):

``router``             the routes under ``/api/order-sets`` and
                       ``/api/patients/{patient_id}/order-sets/{set_id}/instantiate``
``OrderSetService``    the use cases for one tenant (the CLI installs the starter sets with it)
``load_starter_sets``  the shipped starter sets, validated
``InstalledSet``       what installing one set did (created or already there)
"""

from ehr.modules.order_sets.router import router
from ehr.modules.order_sets.schemas import InstalledSet
from ehr.modules.order_sets.service import OrderSetService
from ehr.modules.order_sets.starter import load_starter_sets

__all__ = ["InstalledSet", "OrderSetService", "load_starter_sets", "router"]
