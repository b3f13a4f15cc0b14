"""Liveness and readiness endpoints."""
