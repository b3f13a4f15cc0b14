"""Business modules: one package per domain (router, service, schemas, dependencies)."""
