"""Find (or, as root on Debian/Ubuntu, install) the programs the stack and the tests run.

PostgreSQL and Redis are installed with apt when missing and we are root on a Debian-like system;
otherwise the error names the packages to install. Java 17+ and Maven are needed for HAPI.
Chromium and its chromedriver (Debian's ``chromium``, ``chromium-driver``) drive the browser
tests: ``ensure_browser()``, also ``ehr stack browser`` (``make test`` runs it).
"""

# The devstack's job is running local programs: argv lists, never a shell.
# ruff: noqa: S603

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import NamedTuple

from ehr.devstack.errors import StackError
from ehr.devstack.processes import console

__all__ = [
    "BrowserPaths",
    "apt_install",
    "ensure_browser",
    "find_browser",
    "find_postgres_bin",
    "find_redis_server",
    "require_java_and_maven",
    "require_postgres_bin",
    "require_redis_server",
]

_POLICY_RC = Path("/usr/sbin/policy-rc.d")


def _can_apt() -> bool:
    return os.geteuid() == 0 and shutil.which("apt-get") is not None


def apt_install(packages: list[str]) -> None:
    """``apt-get update && apt-get install -y PACKAGES``, without starting their system services.

    Debian's postinst scripts start a system PostgreSQL (5432) and Redis (6379); a temporary
    policy-rc.d (exit 101, the documented "do not start" answer) keeps them stopped: the devstack
    runs its own project-local servers.
    """
    console.print(f"[bold]Installing {' '.join(packages)} with apt-get…[/]")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    created_policy = False
    if not _POLICY_RC.exists():
        _POLICY_RC.write_text(
            "#!/bin/sh\n# temporary: written by ehr devstack during apt install\nexit 101\n"
        )
        _POLICY_RC.chmod(0o755)
        created_policy = True
    try:
        for argv in (
            ["apt-get", "update", "-q"],
            ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages],
        ):
            result = subprocess.run(argv, env=env, check=False)
            if result.returncode != 0:
                raise StackError(
                    f"`{' '.join(argv)}` failed (exit {result.returncode}); install "
                    f"{' '.join(packages)} yourself and run again"
                )
    finally:
        if created_policy:
            _POLICY_RC.unlink(missing_ok=True)


def _version_key(path: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", path)) or (0,)


def find_postgres_bin() -> Path | None:
    """A directory with initdb, pg_ctl, psql: the newest /usr/lib/postgresql/*/bin, else PATH."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    on_path = shutil.which("pg_ctl")
    if on_path is not None:
        candidates.append(str(Path(on_path).resolve().parent))
    for candidate in candidates:
        directory = Path(candidate)
        if all((directory / tool).is_file() for tool in ("initdb", "pg_ctl", "psql")):
            return directory
    return None


def require_postgres_bin() -> Path:
    found = find_postgres_bin()
    if found is None and _can_apt():
        apt_install(["postgresql"])
        found = find_postgres_bin()
    if found is None:
        raise StackError(
            "PostgreSQL server binaries (initdb, pg_ctl) not found. Install them, e.g. "
            "`sudo apt-get install postgresql` (Debian/Ubuntu) or `brew install postgresql@15`, "
            "or point the stack at a server you run: DATABASE_URL=postgresql://USER:PASS@HOST:PORT/ehr"
        )
    return found


def find_redis_server() -> Path | None:
    on_path = shutil.which("redis-server")
    if on_path is not None:
        return Path(on_path)
    fallback = Path("/usr/bin/redis-server")
    return fallback if fallback.is_file() else None


def require_redis_server() -> Path:
    found = find_redis_server()
    if found is None and _can_apt():
        apt_install(["redis-server"])
        found = find_redis_server()
    if found is None:
        raise StackError(
            "redis-server not found. Install it, e.g. `sudo apt-get install redis-server` "
            "(Debian/Ubuntu) or `brew install redis`, or point the stack at a server you run: "
            "REDIS_URL=redis://HOST:PORT/0"
        )
    return found


def _java_major(java: str) -> int | None:
    result = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if match is None:
        return None
    major = int(match.group(1))
    # Java 8 and older report "1.8.0_…".
    return int(match.group(2) or 0) if major == 1 else major


def require_java_and_maven() -> tuple[str, str]:
    """Paths of ``java`` (17+) and ``mvn``; apt-installed when root on Debian, else explained."""
    java, mvn = shutil.which("java"), shutil.which("mvn")
    major = _java_major(java) if java else None
    if (java is None or major is None or major < 17 or mvn is None) and _can_apt():
        apt_install(["openjdk-17-jdk-headless", "maven"])
        java, mvn = shutil.which("java"), shutil.which("mvn")
        major = _java_major(java) if java else None
    if java is None or major is None or major < 17:
        found = f" (found Java {major})" if major else ""
        raise StackError(
            f"HAPI needs Java 17 or newer{found}. Install a JDK 17+, e.g. "
            "`sudo apt-get install openjdk-17-jdk-headless` or `brew install openjdk@17`"
        )
    if mvn is None:
        raise StackError(
            "Maven (mvn) is needed to build the HAPI launcher. Install it, e.g. "
            "`sudo apt-get install maven` or `brew install maven`"
        )
    return java, mvn


class BrowserPaths(NamedTuple):
    """A Chromium and the chromedriver of the same version (one Debian source package)."""

    chromium: Path
    chromedriver: Path


# Debian names the browser ``chromium``; Ubuntu's (deb, not snap) and others ``chromium-browser``.
_CHROMIUM_NAMES = ("chromium", "chromium-browser")
_BROWSER_PACKAGES = ["chromium", "chromium-driver"]


def find_browser() -> BrowserPaths | None:
    """``chromium`` and ``chromedriver`` on PATH, or None when either is missing."""
    chromium = next(filter(None, map(shutil.which, _CHROMIUM_NAMES)), None)
    chromedriver = shutil.which("chromedriver")
    if chromium is None or chromedriver is None:
        return None
    return BrowserPaths(Path(chromium), Path(chromedriver))


def ensure_browser() -> BrowserPaths:
    """Chromium and chromedriver for the browser tests; apt-installed when root on Debian.

    Selenium is then given both paths, so Selenium Manager never downloads a browser or a driver.
    """
    found = find_browser()
    if found is None and _can_apt():
        apt_install(_BROWSER_PACKAGES)
        found = find_browser()
    if found is None:
        raise StackError(
            "Chromium and chromedriver (for the browser tests) not found. Install them, e.g. "
            "`sudo apt-get install chromium chromium-driver` (Debian), "
            "`sudo apt-get install chromium-browser chromium-chromedriver` (Ubuntu) or "
            "`brew install --cask chromium chromedriver`"
        )
    return found
