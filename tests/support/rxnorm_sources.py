"""Where the derived RxNorm tables the shipped table is built from live (outside the repository,
in the workplace's shared knowledge folder), and the mark of the tests that read them.

``needs_rxnorm_sources``: on a developer's machine without the tables the test is skipped with
the reason; under CI (``CI`` set, as ``.ci/run`` does) it is never skipped — missing tables fail
it, so a broken setup cannot pass silently.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

__all__ = ["RXNORM_A_SUPPLEMENT", "RXNORM_BASE", "RXNORM_SOURCES", "needs_rxnorm_sources"]

_SHARED = Path(os.environ.get("EHR_RXNORM_SOURCES", "/work/shared/knowledge"))
RXNORM_BASE = _SHARED / "rxnorm-2025-10-partial"
RXNORM_A_SUPPLEMENT = _SHARED / "rxnorm-2025-10-a-supplement"
RXNORM_SOURCES = (RXNORM_BASE, RXNORM_A_SUPPLEMENT)

needs_rxnorm_sources = pytest.mark.skipif(
    not all(path.is_dir() for path in RXNORM_SOURCES) and not os.environ.get("CI"),
    reason=f"the derived RxNorm tables live outside the repository ({_SHARED}; "
    "EHR_RXNORM_SOURCES overrides); under CI their absence is a failure",
)
