import hashlib
import re
from pathlib import Path

STEP_FILE = re.compile(r"step-(\d+)\.pt")


def step_files(folder: Path) -> list[Path]:
    """The step-*.pt files in `folder`, oldest step first (by the number in the name, not by the file's time)."""
    found = [(int(m.group(1)), p) for p in Path(folder).iterdir() if (m := STEP_FILE.fullmatch(p.name))]
    return [p for _, p in sorted(found)]


def keep(folder: Path, keep_last: int) -> None:
    for path in step_files(folder)[:-keep_last]:
        path.with_name(path.name + ".sha256").unlink(missing_ok=True)
        path.unlink()


def is_good(path: Path) -> bool:
    sidecar = path.with_name(path.name + ".sha256")
    if not sidecar.is_file():
        return False
    expected = sidecar.read_text().split(" ")[0]
    return hashlib.sha256(path.read_bytes()).hexdigest() == expected


def newest_good(folder: Path) -> Path | None:
    for path in reversed(step_files(folder)):
        if is_good(path):
            return path
    return None
