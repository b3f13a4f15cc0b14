"""Medication safety: drug-drug, drug-allergy and duplicate-therapy checks.

The knowledge base is reviewable source data (``data/sources/*.yaml``, schema in
``kb_sources.py``) compiled deterministically to a runtime index (``kb_compiler.py``); codes are
normalised to RxNorm ingredient sets by ``normalisation.py``; ``engine.py`` checks a proposed
medication against a patient's active medications and allergies.

The public surface (other modules and the entrypoints import only this):

``router``                  the ``/api/medication-safety`` routes
``get_knowledge``           the knowledge base and RxNorm table (loaded once; the app loads it at
                            startup), ``KnowledgeDep`` as a dependency
``medication_checks_for``   the checks under a tenant's display policy (:class:`MedicationChecks`)
                            for callers whose tenant is not the principal's (CDS clients)
``MedicationChecks``        the checks of a record the caller holds: ``check_orders`` (the CDS
                            order-select / order-sign entry point), ``check_medication_list``,
                            ``check_new_allergies``; they answer a ``RecordCheck``
``PatientRecord``           the raw FHIR resources of one patient those checks read
the RxNorm tools            ``build_subset``, ``import_rrf_zip`` (``ehr medication-safety``)
"""

from ehr.modules.medication_safety.checks import MedicationChecks, RecordCheck
from ehr.modules.medication_safety.dependencies import (
    KnowledgeDep,
    get_knowledge,
    medication_checks_for,
)
from ehr.modules.medication_safety.kb_compiler import SOURCES_DIR
from ehr.modules.medication_safety.router import router
from ehr.modules.medication_safety.rxnorm_import import (
    DEFAULT_MAX_MEMBER_BYTES,
    RxNormBuildError,
    RxNormImportError,
    build_subset,
    import_rrf_zip,
)
from ehr.modules.medication_safety.service import PatientRecord

__all__ = [
    "DEFAULT_MAX_MEMBER_BYTES",
    "SOURCES_DIR",
    "KnowledgeDep",
    "MedicationChecks",
    "PatientRecord",
    "RecordCheck",
    "RxNormBuildError",
    "RxNormImportError",
    "build_subset",
    "get_knowledge",
    "import_rrf_zip",
    "medication_checks_for",
    "router",
]
