"""Pharmacy (ADR 0034): stock by location, lot and expiry in an append-only, hash-chained
ledger; FEFO picking; the controlled-substance record (witnessed waste, counts and
discrepancies, the inventory at a point in time).

The public surface (other modules and the entrypoints import only this):

``router``          ``/api/pharmacy`` (locations, products, stock movements, ledger, reports)
``queue_router``    ``/api/pharmacy/queue`` and ``/api/pharmacy/orders`` (verify, dispense)
``HANDLERS``        the worker's ``pharmacy.queue`` (fhir.changed of MedicationRequests → queue;
                    ``on_order_change`` the handler itself)
``StockBook``       the stock of one tenant moved by one actor, in the caller's transaction
                    (``receive``, ``adjust``, ``transfer``, ``count``, ``waste``, ``take``
                    FEFO, ``put_back``, ``recall``)
``verify_ledger``   recompute a tenant's ledger hash chain (``ehr pharmacy ledger verify``)
``export_ledger``   the ledger as flat rows (``EXPORT_FIELDS``; ``ehr pharmacy ledger export``)
``schedule_for``    the DEA schedule of a set of RxNorm ingredients (the cited table)
``JOBS``            the worker's ``pharmacy.expiry_alerts`` (daily; ``raise_expiry_alerts``)
"""

from ehr.modules.pharmacy.alerts import EXPIRY_ALERTS, raise_expiry_alerts
from ehr.modules.pharmacy.inventory import Picked, StockBook
from ehr.modules.pharmacy.ledger import LedgerVerification
from ehr.modules.pharmacy.ledger import verify as verify_ledger
from ehr.modules.pharmacy.queue_router import queue_router
from ehr.modules.pharmacy.reports import EXPORT_FIELDS, export_ledger
from ehr.modules.pharmacy.router import router
from ehr.modules.pharmacy.schedules import schedule_for
from ehr.modules.pharmacy.verification import HANDLER
from ehr.modules.pharmacy.verification import on_fhir_change as on_order_change

JOBS = (EXPIRY_ALERTS,)
HANDLERS = (HANDLER,)

__all__ = [
    "EXPORT_FIELDS",
    "HANDLERS",
    "JOBS",
    "LedgerVerification",
    "Picked",
    "StockBook",
    "export_ledger",
    "on_order_change",
    "queue_router",
    "raise_expiry_alerts",
    "router",
    "schedule_for",
    "verify_ledger",
]
