"""Shared pieces of the load benchmarks: an outside load generator and what the stack spent.

``vegeta`` drives HTTP load from a Go process (open model at a fixed arrival rate, or closed loop
at a fixed concurrency), so the Python client is no longer what limits the direct side.
``probes`` reads what each server process spent (CPU from /proc, PostgreSQL statements from
pg_stat_statements, Redis commands from INFO), sets the durability PostgreSQL runs with, and pins
processes to cores.
"""
