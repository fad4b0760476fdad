import hashlib
import os
import tempfile
from pathlib import Path

import torch


def write_atomically(path: Path, write) -> None:
    """Call write(f) on a temporary file beside `path`, sync it, and rename it to `path`; on failure delete it."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())  # the bytes reach the disk before the name points at them
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def save(run: dict, path: Path) -> None:
    path = Path(path)
    checkpoint = {"model": run["model"].state_dict(), "optimizer": run["optimizer"].state_dict(),
                  "scheduler": run["scheduler"].state_dict(), "step": int(run["step"]),
                  "best_acc": float(run["best_acc"]), "rng": torch.get_rng_state()}
    write_atomically(path, lambda f: torch.save(checkpoint, f))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    sidecar = path.with_name(path.name + ".sha256")
    write_atomically(sidecar, lambda f: f.write(f"{digest}  {path.name}\n".encode()))
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)  # and so do the two renames, which are entries in the folder
    finally:
        os.close(folder)
