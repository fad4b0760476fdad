"""What a folder holds, as a test compares it: every name, sorted (hidden files too: a save leaves none behind)."""
from __future__ import annotations

from pathlib import Path


def names(folder: Path) -> list[str]:
    """Return the sorted names of everything in `folder`."""
    return sorted(p.name for p in Path(folder).iterdir())
