"""Audit trail: one tamper-evident record per access to patient data."""
