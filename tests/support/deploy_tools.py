"""The deployment tools the chart and Terraform checks run, found on PATH or built from the Go
module proxy into .stack/bin on a machine that lacks them (a fresh machine needs only Go):

- Helm (``go install helm.sh/helm/v4/cmd/helm``);
- Terraform or OpenTofu for ``fmt``: ``tofu`` or ``terraform`` on PATH, else OpenTofu built from
  its module (its go.mod has replace directives, so ``go install`` refuses it: the module is
  downloaded and built in place);
- the offline validators (k8s/validate, terraform/validate: small Go programs of our own).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".stack" / "bin"
GO = shutil.which("go") or "go"
HELM_VERSION = "v4.3.2"
OPENTOFU_VERSION = "v1.10.10"


def run(
    args: list[str], *, cwd: Path = ROOT, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """A tool run on the repository's files: output captured, never raising on failure."""
    return subprocess.run(  # noqa: S603 - fixed tool invocations on the repository's files
        args,
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env={**os.environ, "GOFLAGS": "-mod=mod", "TF_IN_AUTOMATION": "1"},
    )


def _go(args: list[str], *, cwd: Path = ROOT, gobin: Path | None = None) -> None:
    env = {**os.environ, **({"GOBIN": str(gobin)} if gobin else {})}
    done = subprocess.run(  # noqa: S603 - pinned modules from the Go module proxy
        [GO, *args], cwd=cwd, capture_output=True, text=True, timeout=1800, check=False, env=env
    )
    assert done.returncode == 0, done.stderr[-3000:]


@cache
def helm() -> str:
    found = shutil.which("helm")
    if found:
        return found
    local = BIN / "helm"
    if not local.is_file():
        BIN.mkdir(parents=True, exist_ok=True)
        _go(["install", f"helm.sh/helm/v4/cmd/helm@{HELM_VERSION}"], gobin=BIN)
    return str(local)


@cache
def terraform_cli() -> str:
    """``tofu`` or ``terraform`` from PATH, else OpenTofu built into .stack/bin."""
    for name in ("tofu", "terraform"):
        found = shutil.which(name)
        if found:
            return found
    local = BIN / "tofu"
    if not local.is_file():
        BIN.mkdir(parents=True, exist_ok=True)
        module = f"github.com/opentofu/opentofu@{OPENTOFU_VERSION}"
        done = subprocess.run(  # noqa: S603 - the pinned OpenTofu release from the Go module proxy
            [GO, "mod", "download", "-json", module],
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        source = Path(json.loads(done.stdout)["Dir"])
        _go(["build", "-o", str(local), "./cmd/tofu"], cwd=source)
    return str(local)


@cache
def go_tool(directory: Path, name: str) -> str:
    """Our own Go program in ``directory``, built once per session into .stack/bin."""
    BIN.mkdir(parents=True, exist_ok=True)
    target = BIN / name
    _go(["build", "-mod=mod", "-o", str(target), "."], cwd=directory)
    return str(target)
