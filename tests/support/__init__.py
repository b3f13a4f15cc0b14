"""Shared test support: worlds (tenants, users, logins), CDS client keys, FHIR builders and the
fuzzing world. ``tests/`` is on ``sys.path`` (rootdir conftest), so tests import
``from support.<name> import ...``; a test module never imports another test's conftest."""
