"""Our PostgreSQL schema (``settings.db.app_schema``): engine/session, models, migrations."""
