"""Alembic migrations of the app schema (run them with ``ehr migrate`` or
:mod:`ehr.core.db.migrate`)."""
