"""``python -m ehr.devstack …`` — the same commands as ``ehr stack …``."""

from ehr.devstack.cli import app

app(prog_name="python -m ehr.devstack")
