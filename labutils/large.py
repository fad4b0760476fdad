"""Large models: a synthetic wide model, four ways to load it, peak memory in a fresh process, the disk's speed."""
from __future__ import annotations

import gc
import glob
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

MB = 1 << 20


class WideMLP(nn.Module):
    """A stack of `depth` square Linear layers: the simplest model whose size you can dial to any number of MB."""

    def __init__(self, width: int = 1024, depth: int = 4):
        super().__init__()
        self.width, self.depth = width, depth
        self.layers = nn.Sequential(*[nn.Linear(width, width) for _ in range(depth)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = torch.relu(layer(x))
        return x


def wide_shape(megabytes: float, width: int = 2048) -> tuple[int, int]:
    """Return (width, depth) for a float32 WideMLP of about `megabytes` MiB (at least one layer)."""
    if not megabytes > 0 or width < 1:
        raise ValueError(f"megabytes must be > 0 and width >= 1, got megabytes={megabytes!r}, width={width!r}")
    per_layer = (width * width + width) * 4
    return width, max(1, round(megabytes * MB / per_layer))


def wide_mlp(megabytes: float, *, width: int = 2048, seed: int = 0, device: str | torch.device = "cpu") -> WideMLP:
    """Build a WideMLP of about `megabytes` MiB on `device` (the CPU by default; "meta" allocates no memory).

    Its weights are drawn from `seed` without touching torch's global generator: the caller's random state is
    the same afterwards.
    """
    width, depth = wide_shape(megabytes, width)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        with torch.device(device):
            return WideMLP(width, depth)


def weight_bytes(module_or_state: nn.Module | dict) -> int:
    """Return the bytes of every tensor in a module's state_dict (or in a state_dict)."""
    state = module_or_state.state_dict() if isinstance(module_or_state, nn.Module) else module_or_state
    return sum(t.numel() * t.element_size() for t in state.values())


# --- four ways to load a checkpoint into a model -----------------------------------------------------------
# Each takes the checkpoint's path and the model's shape, and returns a model ready to run.

def load_naive(path: Path, width: int, depth: int) -> nn.Module:
    """The usual way: build the model (random weights), read the whole file, copy it in."""
    model = WideMLP(width, depth)                         # copy 1: freshly initialised weights
    state = torch.load(path, weights_only=True)           # copy 2: the file's tensors
    model.load_state_dict(state)                          # copy 2 is copied into copy 1
    return model


def load_mmap(path: Path, width: int, depth: int) -> nn.Module:
    """mmap alone: the file is mapped, not read, but load_state_dict still copies it into a real model."""
    model = WideMLP(width, depth)
    state = torch.load(path, weights_only=True, mmap=True)
    model.load_state_dict(state)                          # reads every page of the file to copy it
    return model


def load_meta_assign(path: Path, width: int, depth: int) -> nn.Module:
    """A model without memory (meta device), whose parameters become the loaded tensors (assign=True)."""
    with torch.device("meta"):
        model = WideMLP(width, depth)                     # shapes only: no bytes, no random init
    state = torch.load(path, weights_only=True)
    model.load_state_dict(state, assign=True)             # the loaded tensors become the parameters
    return model


def load_meta_mmap_assign(path: Path, width: int, depth: int) -> nn.Module:
    """Meta model + mmap + assign: the parameters are the file's pages, read only when used."""
    with torch.device("meta"):
        model = WideMLP(width, depth)
    state = torch.load(path, weights_only=True, mmap=True)
    model.load_state_dict(state, assign=True)
    return model


LOADERS: dict[str, Callable[[Path, int, int], nn.Module]] = {
    "naive": load_naive,
    "mmap": load_mmap,
    "meta + assign": load_meta_assign,
    "meta + mmap + assign": load_meta_mmap_assign,
}


def read_one_tensor(path: Path, name: str) -> torch.Tensor:
    """Read one tensor from a .safetensors file: the header says where it is; nothing else is read."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return f.get_tensor(name)


def touch(tensors) -> int:
    """Read one byte in every 4 KiB page of each tensor (what a forward pass would do); return the bytes."""
    total = 0
    for t in tensors:
        flat = t.detach().reshape(-1).view(torch.uint8)
        flat[::4096].sum()  # one byte per page: the system must bring every page into memory
        total += flat.numel()
    return total


# --- peak memory, measured in a fresh process --------------------------------------------------------------

def measure_rss() -> dict[str, int | None]:
    """Return this process's resident memory in bytes: now, peak, and (on Linux) anonymous and file-backed."""
    status = Path("/proc/self/status")
    if status.exists():
        fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        kib = {key: int(fields[key].split()[0]) * 1024 for key in ("VmRSS", "VmHWM", "RssAnon", "RssFile")}
        return {"now": kib["VmRSS"], "peak": kib["VmHWM"], "anon": kib["RssAnon"], "file": kib["RssFile"]}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak *= 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB elsewhere
    return {"now": peak, "peak": peak, "anon": None, "file": None}


def reset_peak() -> bool:
    """Reset the peak-memory counter (Linux); return False where the system has none to reset."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _child(strategy: str, path: str, width: int, depth: int) -> None:
    """Run one loading strategy in this (fresh) process and print its memory as JSON.

    The strategy first loads a tiny model of the same kind, unmeasured: what a first load costs once (modules
    imported on first use, the allocator's first arenas: about 8 MB on Python 3.13) is not the weights' memory.
    """
    import safetensors.torch

    with tempfile.TemporaryDirectory() as folder:
        tiny = WideMLP(8, 1)
        torch.save(tiny.state_dict(), Path(folder) / "tiny.pt")
        safetensors.torch.save_file(tiny.state_dict(), Path(folder) / "tiny.pt.safetensors")
        if strategy == ONE_TENSOR:
            read_one_tensor(Path(folder) / "tiny.pt.safetensors", "layers.0.weight")
        else:
            LOADERS[strategy](Path(folder) / "tiny.pt", 8, 1)
    gc.collect()
    reset = reset_peak()
    before = measure_rss()
    start = time.perf_counter()
    if strategy == ONE_TENSOR:
        tensors = [read_one_tensor(Path(path), "layers.0.weight")]
    else:
        model = LOADERS[strategy](Path(path), width, depth)
        assert not any(p.is_meta for p in model.parameters()), "a parameter is still on the meta device"
        tensors = list(model.state_dict().values())
    touched = touch(tensors)
    seconds = time.perf_counter() - start
    after = measure_rss()
    print(json.dumps({"strategy": strategy, "before": before, "after": after, "touched": touched,
                      "seconds": seconds, "peak_reset": reset, "pid": os.getpid()}))


PEAK_MEMORY_TIMEOUT_S = 1200  # one load of a model that fits in memory, in a fresh Python; minutes at most
ONE_TENSOR = "one tensor (safe_open)"

# The parent of the measured processes: it reads one load per line ([strategy, path, width, depth]) and, on Linux,
# forks a process for each, so that every load starts from the same clean Python with torch imported (starting
# Python and torch costs about 3 s of CPU; a fork, milliseconds). Elsewhere it makes its one load itself.
_PARENT = """
import json, os, sys, traceback
from labutils.large import _child
for line in sys.stdin:
    if sys.platform != "linux":
        _child(*json.loads(line))
        break
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            _child(*json.loads(line))
            status = 0
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)
    if os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]):
        print(json.dumps({"failed": True}), flush=True)
"""


def peak_memory(files: dict[str, os.PathLike | str], width: int, depth: int) -> dict[str, dict]:
    """Load each file of {strategy: path} (a LOADERS key, or ONE_TENSOR) in a fresh process; return their memory.

    The processes are forked, one per load, from one Python started for this call (on Linux; elsewhere each load
    starts a Python of its own), so nothing cached in the caller, nor by an earlier load, flatters a load.
    """
    unknown = [strategy for strategy in files if strategy not in LOADERS and strategy != ONE_TENSOR]
    if unknown:
        raise ValueError(f"unknown strategy {unknown[0]!r}; choose from {[*LOADERS, ONE_TENSOR]}")
    missing = [path for path in files.values() if not Path(path).is_file()]
    if missing:
        raise FileNotFoundError(f"{missing[0]} does not exist: save the model there first (torch.save for .pt, "
                                "safetensors.torch.save_file for .safetensors)")
    loads = [json.dumps([strategy, str(path), width, depth]) + "\n" for strategy, path in files.items()]
    batches = ["".join(loads)] if sys.platform == "linux" else loads
    results: list[dict] = []
    for batch in batches:
        done = subprocess.run([sys.executable, "-c", _PARENT], input=batch, capture_output=True, text=True,
                              timeout=PEAK_MEMORY_TIMEOUT_S * batch.count("\n"))
        got = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
        failed = next((n for n, result in enumerate(got) if "failed" in result), len(got))
        if done.returncode or failed < batch.count("\n"):
            strategy, path = list(files.items())[len(results) + failed]
            raise RuntimeError(f"loading {path} with {strategy!r} failed in the child process:\n"
                               f"{done.stderr[-2000:]}")
        results += got
    measured = {}
    for strategy, result in zip(files, results, strict=True):
        before, after = result["before"], result["after"]
        result["peak_extra"] = after["peak"] - before["now"]  # the peak was reset just before (Linux)
        for kind in ("anon", "file"):
            result[f"{kind}_extra"] = None if after[kind] is None else after[kind] - before[kind]
        measured[strategy] = result
    return measured


def free_memory_bytes(root: Path = Path("/")) -> int | None:
    """Return the memory this process can still get: the system's MemAvailable, or less if a container limits it."""
    candidates = []
    try:
        for line in (root / "proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                candidates.append(int(line.split()[1]) * 1024)
    except OSError:
        pass
    # JupyterHub and Binder run notebooks in containers whose limit /proc/meminfo does not show (cgroup v2, v1)
    for limit_file, usage_file in (("sys/fs/cgroup/memory.max", "sys/fs/cgroup/memory.current"),
                                   ("sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            limit, usage = (root / limit_file).read_text().strip(), int((root / usage_file).read_text())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 1 << 60:  # "max" or a huge number: no limit
            candidates.append(max(0, int(limit) - usage))
    return min(candidates) if candidates else None


def human(n: float) -> str:
    """Write a byte count with a binary unit: 1.5 KiB, 268.4 MiB, 13.0 GiB."""
    if n < 1024:
        return f"{n:.0f} B"
    exponent = min(int(math.log(n, 1024)), 4)
    return f"{n / 1024 ** exponent:.1f} {['B', 'KiB', 'MiB', 'GiB', 'TiB'][exponent]}"


# --- the disk's own speed: what a save or a load is measured against ------------------------------------------

def raw_write(state: dict, path: Path) -> float:
    """Write the tensors' bytes back to back, then fsync: the least any saver must do. Return the seconds."""
    start = time.perf_counter()
    with open(path, "wb") as f:
        for tensor in state.values():
            f.write(tensor.contiguous().view(torch.uint8).numpy().data)
        f.flush()
        os.fsync(f.fileno())
    return time.perf_counter() - start


def disk_read(path: Path, chunk: int = 16 << 20) -> None:
    """Read every byte of a file (or of every file in a folder) into one reused 16 MiB buffer: the disk's speed."""
    buffer = bytearray(chunk)
    for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
        if file.is_file():
            with open(file, "rb", buffering=0) as f:
                while f.readinto(buffer):
                    pass


def drop_cache(path: Path) -> bool:
    """Ask the kernel to forget the file's (or folder's) cached pages, so the next read comes from the disk.

    Return False, doing nothing, where the system cannot be asked (no posix_fadvise: macOS, Windows).
    """
    if not hasattr(os, "posix_fadvise"):
        return False
    beside = sorted(path.parent.glob(glob.escape(path.name) + "*"))  # the file, and its sidecar
    for file in beside + (sorted(path.rglob("*")) if path.is_dir() else []):
        if file.is_file():
            fd = os.open(file, os.O_RDONLY)
            try:
                getattr(os, "fdatasync", os.fsync)(fd)  # macOS has no fdatasync
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
    return True


def backing_file(tensor: torch.Tensor) -> str | None:
    """Return the file a tensor's memory is mapped from, or None for memory of its own (read from /proc, Linux).

    Raise OSError where the system does not list a process's mappings (no /proc/self/maps: macOS, Windows).
    """
    address = tensor.untyped_storage().data_ptr()
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split(maxsplit=5)
            start, end = (int(part, 16) for part in fields[0].split("-"))
            if start <= address < end:
                name = fields[5].strip() if len(fields) == 6 else ""
                return name if name.startswith("/") else None  # anonymous, [heap] or the like: its own memory
    return None
