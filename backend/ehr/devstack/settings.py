"""Where the project-local stack lives and which ports it uses.

Read from the environment (and ``.env``) with the prefix ``EHR_STACK_``; ``DATABASE_URL`` and
``REDIS_URL`` (no prefix) mean "use that server, start none". These are settings of the dev/test
tooling only: the service itself reads :class:`ehr.core.config.Settings`, to which the devstack
hands
the addresses it chose (``EHR_DB__URL``, ``EHR_REDIS__URL``, ``EHR_FHIR__BASE_URL``).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["StackSettings", "find_repo_root"]

# The marker of the repository root: the HAPI launcher's Maven project.
_ROOT_MARKER = Path("hapi-config") / "launcher" / "pom.xml"


def find_repo_root() -> Path:
    """The repository root: the checkout this package was installed from, else the cwd's."""
    starts = [Path(__file__).resolve(), Path.cwd().resolve()]
    for start in starts:
        for candidate in [start, *start.parents]:
            if (candidate / _ROOT_MARKER).is_file():
                return candidate
    raise FileNotFoundError(
        f"cannot find the repository root (a directory holding {_ROOT_MARKER}); "
        "run from inside the checkout or set EHR_STACK_ROOT"
    )


class StackSettings(BaseSettings):
    """Settings of the local dev/test stack (``EHR_STACK_*``)."""

    model_config = SettingsConfigDict(
        env_prefix="EHR_STACK_",
        env_file=".env",
        extra="ignore",
        populate_by_name=True,
    )

    # Repository root (default: found from this package's location or the working directory).
    root: Path | None = None
    # State directory: data, logs, pid files (default: <root>/.stack, git-ignored).
    dir: Path | None = None
    pg_port: int = 55432
    redis_port: int = 56379
    hapi_port: int = 8090
    api_port: int = 8000
    # The background-job worker's /health and /metrics (EHR_JOBS__HEALTH_PORT of the worker).
    worker_port: int = 9465
    # The HL7 v2 MLLP listener: where senders connect, and its /health and /metrics.
    hl7_port: int = 2575
    hl7_health_port: int = 9466
    # Java heap for HAPI (-Xmx).
    hapi_xmx: str = "1536m"
    # How long to wait for HAPI's /metadata (first start creates ~200 tables).
    hapi_timeout_seconds: float = 300.0
    # How long to wait for the API's /ready.
    api_timeout_seconds: float = 60.0
    # How long to wait for the worker's /health.
    worker_timeout_seconds: float = 60.0
    # External servers: when set, the devstack starts no server of that kind and uses these.
    database_url: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "database_url")
    )
    redis_url: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("REDIS_URL", "redis_url")
    )

    def repo_root(self) -> Path:
        return (self.root or find_repo_root()).resolve()

    def stack_dir(self) -> Path:
        return (self.dir or self.repo_root() / ".stack").resolve()
