"""The project-local dev/test stack: PostgreSQL, Redis, HAPI FHIR and the API on one machine.

CLI: ``ehr stack up|down|status|logs|restart-hapi`` (``python -m ehr.devstack`` works too).
From Python (tests)::

    from ehr.devstack import Stack
    stack = Stack.from_settings()
    stack.stop_hapi(); stack.start_hapi(wait=True); stack.hapi_running()
"""

from ehr.devstack.errors import StackError
from ehr.devstack.settings import StackSettings
from ehr.devstack.stack import Stack

__all__ = ["Stack", "StackError", "StackSettings"]
