"""Medication safety: drug-drug, drug-allergy and duplicate-therapy checks.

The knowledge base is reviewable source data (``data/sources/*.yaml``, schema in
``kb_sources.py``) compiled deterministically to a runtime index (``kb_compiler.py``); codes are
normalised to RxNorm ingredient sets by ``normalisation.py``; ``engine.py`` checks a proposed
medication against a patient's active medications and allergies.
"""
