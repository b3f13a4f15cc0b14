"""Medication safety: drug-drug, drug-allergy and duplicate-therapy checks.

The knowledge (:mod:`.knowledge`: the reviewable sources ``data/sources/*.yaml`` compiled
deterministically to a runtime index, and the RxNorm table that normalises codes to ingredients)
is checked by the engine (``engine.py`` on the types of ``issues.py``) against a patient's active
medications and allergies: read from FHIR (``record.py``, ``profile.py``) for the API
(``service.py``, ``router.py``), or held by the caller (``checks.py``: CDS Hooks).

The public surface (other modules and the entrypoints import only this):

``router``                  the ``/api/medication-safety`` routes
``get_knowledge``           the knowledge base and RxNorm table (loaded once; the app loads it at
                            startup), ``KnowledgeDep`` as a dependency
``medication_checks_for``   the checks under a tenant's display policy (:class:`MedicationChecks`)
                            for callers whose tenant is not the principal's (CDS clients)
``read_patient_record``     ``await read_patient_record(fhir, patient) -> PatientRecord``: the
                            patient's current medication record as the checks read it (active and
                            on-hold orders, statements, their Medications, allergies; bounded)
``MedicationChecks``        the checks of a record the caller holds (a ``PatientRecord``):
                            ``check_orders`` (the CDS order-select / order-sign entry point),
                            ``check_medication_list``, ``check_new_allergies``; they answer a
                            ``RecordCheck`` (the ``CheckResult`` and the record's
                            ``PatientProfile``); ``allergy_from_fhir`` reads one
                            AllergyIntolerance as the checks do (or says why it is left out)
the issue types             ``CheckResult``, ``Issue``, ``ImplicatedItem``, ``IssueCategory``,
                            ``Display``, ``AllergyInput`` (what a renderer of the results reads)
the shared texts            ``issue_summary``, ``citation_url``, ``RULE_SYSTEM``, ``RXNORM_SYSTEM``
``IssueCardRenderer``       the card renderer the API's ``include=cds-card`` needs; the app sets
                            CDS Hooks' one as ``app.state.<CARD_RENDERER_STATE>``
the RxNorm tools            ``build_table``, ``import_rrf_zip`` and their errors, ``SOURCES_DIR``,
                            ``RXNORM_DIR`` (``ehr medication-safety``)
"""

from ehr.modules.medication_safety.checks import MedicationChecks, RecordCheck
from ehr.modules.medication_safety.dependencies import (
    CARD_RENDERER_STATE,
    KnowledgeDep,
    get_knowledge,
    medication_checks_for,
)
from ehr.modules.medication_safety.issues import (
    AllergyInput,
    CheckResult,
    ImplicatedItem,
    Issue,
    IssueCategory,
)
from ehr.modules.medication_safety.knowledge import (
    DEFAULT_MAX_MEMBER_BYTES,
    RXNORM_DIR,
    RXNORM_SYSTEM,
    SOURCES_DIR,
    Display,
    RxNormBuildError,
    RxNormImportError,
    build_table,
    import_rrf_zip,
)
from ehr.modules.medication_safety.profile import PatientProfile, allergy_from_fhir
from ehr.modules.medication_safety.record import PatientRecord, read_patient_record
from ehr.modules.medication_safety.rendering import (
    RULE_SYSTEM,
    IssueCardRenderer,
    citation_url,
    issue_summary,
)
from ehr.modules.medication_safety.router import router

__all__ = [
    "CARD_RENDERER_STATE",
    "DEFAULT_MAX_MEMBER_BYTES",
    "RULE_SYSTEM",
    "RXNORM_DIR",
    "RXNORM_SYSTEM",
    "SOURCES_DIR",
    "AllergyInput",
    "CheckResult",
    "Display",
    "ImplicatedItem",
    "Issue",
    "IssueCardRenderer",
    "IssueCategory",
    "KnowledgeDep",
    "MedicationChecks",
    "PatientProfile",
    "PatientRecord",
    "RecordCheck",
    "RxNormBuildError",
    "RxNormImportError",
    "allergy_from_fhir",
    "build_table",
    "citation_url",
    "get_knowledge",
    "import_rrf_zip",
    "issue_summary",
    "medication_checks_for",
    "read_patient_record",
    "router",
]
