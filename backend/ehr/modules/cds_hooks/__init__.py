"""CDS Hooks 2.0 services at ``/cds-services`` (ADR 0012)."""
