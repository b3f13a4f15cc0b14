"""The medication-safety knowledge: the knowledge base and the RxNorm table, and their tools.

``sources.py``        the schema of the reviewable sources (``data/sources/*.yaml``)
``reading.py``        reading and validating the source files
``cross_checks.py``   the cross-checks of the merged sources
``compiler.py``       sources → the runtime index, deterministically (``compile_knowledge``)
``base.py``           the runtime index (:class:`KnowledgeBase`), ranks, the built-in rule ids
``rxnorm_table.py``   code normalisation: RxCUI / NDC → RxNorm ingredients (:class:`RxNormTable`)
``dose_forms.py``     the route of a concept, parsed from the dose form in its name
``rxnorm_files.py``   the table files both RxNorm producers write
``rxnorm_build.py``   the RxNorm table shipped in the package (``ehr medication-safety
                      build-rxnorm-table``)
``rxnorm_release.py`` an operator's full table from an NLM release (``ehr medication-safety
                      import-rxnorm``)
``loading.py``        the shipped knowledge, loaded once per process (:func:`load_knowledge`)

The rest of the module imports this surface.
"""

from ehr.modules.medication_safety.knowledge.base import (
    BUILTIN_RULE_IDS,
    DISPLAY_RANK,
    LEVEL_RANK,
    RULE_ALLERGY_SAME_GROUP,
    RULE_ALLERGY_SAME_INGREDIENT,
    RULE_DOSE_NOT_CHECKED,
    RULE_DUPLICATE_INGREDIENT,
    RULE_UNABLE_TO_CHECK,
    SEVERITY_RANK,
    CitationRef,
    CompiledAllergenGroup,
    CompiledClass,
    CompiledCrossSensitivity,
    CompiledDoseLimit,
    CompiledDuplicateClass,
    CompiledInteraction,
    CompiledOverride,
    CompiledSide,
    Ingredient,
    KnowledgeBase,
    Membership,
    NearMissPair,
    PairHit,
    SourceFile,
    duplicate_rule_id,
)
from ehr.modules.medication_safety.knowledge.compiler import compile_knowledge
from ehr.modules.medication_safety.knowledge.dose_forms import pack_components, route_of
from ehr.modules.medication_safety.knowledge.loading import (
    RXNORM_DIR,
    SOURCES_DIR,
    LoadedKnowledge,
    load_knowledge,
    load_knowledge_base,
    load_resolver,
    shipped_table_dir,
)
from ehr.modules.medication_safety.knowledge.reading import CompileProblem, KnowledgeBaseInvalid
from ehr.modules.medication_safety.knowledge.rxnorm_build import BuildReport, build_table
from ehr.modules.medication_safety.knowledge.rxnorm_files import (
    ConceptRow,
    RxNormBuildError,
    RxNormImportError,
    write_table,
)
from ehr.modules.medication_safety.knowledge.rxnorm_release import (
    DEFAULT_MAX_MEMBER_BYTES,
    ImportReport,
    import_rrf_zip,
)
from ehr.modules.medication_safety.knowledge.rxnorm_table import (
    CONCEPTS_FILE,
    NDC_FILE,
    NDC_SYSTEM,
    RELEASE_FILE,
    RXNORM_SYSTEM,
    TTYS,
    CodeResolver,
    Resolution,
    RxNormTable,
    TableFormatError,
    normalise_ndc,
)
from ehr.modules.medication_safety.knowledge.sources import (
    DEFAULT_DISPLAY,
    CrossSensitivityLevel,
    Display,
    DoseUnit,
    RouteCategory,
    Severity,
)

__all__ = [
    "BUILTIN_RULE_IDS",
    "CONCEPTS_FILE",
    "DEFAULT_DISPLAY",
    "DEFAULT_MAX_MEMBER_BYTES",
    "DISPLAY_RANK",
    "LEVEL_RANK",
    "NDC_FILE",
    "NDC_SYSTEM",
    "RELEASE_FILE",
    "RULE_ALLERGY_SAME_GROUP",
    "RULE_ALLERGY_SAME_INGREDIENT",
    "RULE_DOSE_NOT_CHECKED",
    "RULE_DUPLICATE_INGREDIENT",
    "RULE_UNABLE_TO_CHECK",
    "RXNORM_DIR",
    "RXNORM_SYSTEM",
    "SEVERITY_RANK",
    "SOURCES_DIR",
    "TTYS",
    "BuildReport",
    "CitationRef",
    "CodeResolver",
    "CompileProblem",
    "CompiledAllergenGroup",
    "CompiledClass",
    "CompiledCrossSensitivity",
    "CompiledDoseLimit",
    "CompiledDuplicateClass",
    "CompiledInteraction",
    "CompiledOverride",
    "CompiledSide",
    "ConceptRow",
    "CrossSensitivityLevel",
    "Display",
    "DoseUnit",
    "ImportReport",
    "Ingredient",
    "KnowledgeBase",
    "KnowledgeBaseInvalid",
    "LoadedKnowledge",
    "Membership",
    "NearMissPair",
    "PairHit",
    "Resolution",
    "RouteCategory",
    "RxNormBuildError",
    "RxNormImportError",
    "RxNormTable",
    "Severity",
    "SourceFile",
    "TableFormatError",
    "build_table",
    "compile_knowledge",
    "duplicate_rule_id",
    "import_rrf_zip",
    "load_knowledge",
    "load_knowledge_base",
    "load_resolver",
    "normalise_ndc",
    "pack_components",
    "route_of",
    "shipped_table_dir",
    "write_table",
]
