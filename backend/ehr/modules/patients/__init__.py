"""Patients: search, read and create Patient resources through the tenant-bound FHIR client."""
