"""The HL7 v2 MLLP listener (``ehr hl7 listen``, ADR 0033) in the background for ``ehr stack up``.

Managed like the worker (a session leader with a pid file and a log under ``.stack``, replaced
when the backend's code changed, SIGTERM then SIGKILL): ready when its ``/health``
(``EHR_HL7__HEALTH_PORT``, the stack's ``EHR_STACK_HL7_HEALTH_PORT``) answers 200. It listens
for MLLP on ``EHR_STACK_HL7_PORT`` (2575, the port IANA assigned to HL7 over MLLP).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ehr.devstack.processes import ManagedProcess
from ehr.devstack.worker_server import WorkerServer

__all__ = ["LISTENER_COMMAND", "Hl7ListenerServer"]

LISTENER_COMMAND: Final = ("-m", "ehr.entrypoints.cli", "hl7", "listen")
MARKER: Final = "ehr.entrypoints.cli hl7 listen"


@dataclass(frozen=True)
class Hl7ListenerServer(WorkerServer):
    """``port`` is the listener's health port; ``mllp_port`` where senders connect."""

    mllp_port: int = 2575

    @property
    def port_file(self) -> Path:
        return self.stack_dir / "run" / "hl7-listener.port"

    @property
    def process(self) -> ManagedProcess:
        return ManagedProcess(
            name="hl7 listener",
            pid_file=self.stack_dir / "run" / "hl7-listener.pid",
            log_file=self.stack_dir / "logs" / "hl7-listener.log",
            marker=MARKER,
        )

    def env(self, base: Mapping[str, str], port: int) -> dict[str, str]:
        return {
            **base,
            "EHR_HL7__HEALTH_PORT": str(port),
            "EHR_HL7__MLLP_PORT": str(self.mllp_port),
        }

    def argv(self) -> list[str]:
        return [sys.executable, *LISTENER_COMMAND]
