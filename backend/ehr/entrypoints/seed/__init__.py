"""Synthetic demo data for development and demos (never real people)."""

from ehr.entrypoints.seed.demo import DEMO_MRN_SYSTEM, SeedReport, seed_demo_data

__all__ = ["DEMO_MRN_SYSTEM", "SeedReport", "seed_demo_data"]
