"""Where the team's evaluation data lives (``../shared`` beside the repository, or ``$PIGUARD_SHARED_DIR``).

That data is not part of the repository, so a clone without it skips the tests that read it, with the path
it looked in as the reason, instead of erroring at collection.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PIGUARD_SHARED_DIR") or REPO.parent / "shared")


def shared_path(*parts: str) -> Path:
    """A path under the shared evaluation data (it may not exist; see ``needs_shared``)."""
    return SHARED.joinpath(*parts)


def needs_shared(path: Path) -> pytest.MarkDecorator:
    """Skip-marker for tests that read ``path`` from the shared data."""
    return pytest.mark.skipif(
        not path.exists(), reason=f"shared evaluation data not found at {path} (set PIGUARD_SHARED_DIR)"
    )
