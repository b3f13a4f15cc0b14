"""``python -m ehr.entrypoints.cli``: the ``ehr`` command line."""

from ehr.entrypoints.cli import app

app()
