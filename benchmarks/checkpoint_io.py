"""Checkpoint save and load throughput, each as a ratio to the raw write and read of as many bytes on the same disk.

For a synthetic state_dict (default 1 GiB of float32, the WideMLP of notebook 08) it times, in one run:
  raw            write the same number of bytes + fsync; read them back into fresh memory (readinto)
  torch.save     torch.save + fsync;                 torch.load
  torch.load mmap  (saved as above)                  torch.load(mmap=True), then every page read
  safetensors    safetensors save_file + fsync;      safetensors load_file
  DCP            torch.distributed.checkpoint.save;  dcp.load into fresh tensors (one process)
  save_checkpoint  labutils: temp file, sha256, fsync, rename;  load_checkpoint: verify sha256, then load
Every save ends with its data on the disk (fsync); before every load the files are dropped from the page
cache (posix_fadvise DONTNEED), so loads read the disk, not memory. --warm keeps the cache instead. A load
ends when one byte of every 4 KiB page of every tensor has been read: loaders that map the file (mmap,
safetensors) read it only then, as a forward pass would.
Each figure is the median of --repeats runs. Usage:
    python benchmarks/checkpoint_io.py [--megabytes 1024] [--repeats 3] [--warm] [--folder DIR]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import safetensors.torch
import torch
import torch.distributed.checkpoint as dcp

from labutils.checkpoint import load_checkpoint, save_checkpoint
from labutils.large import human, touch, weight_bytes, wide_mlp
from labutils.paths import artifacts_dir

# dcp.save/load with no_dist=True still warn that there is no process group: that is the point here.
warnings.filterwarnings("ignore", message="torch.distributed is disabled")


def fsync_path(path: Path) -> None:
    """Flush a file (or every file in a folder) to the disk."""
    for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
        if file.is_file():
            fd = os.open(file, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def drop_cache(path: Path) -> None:
    """Ask the kernel to forget the file's (or folder's) cached pages, so the next read comes from the disk."""
    for file in sorted(path.parent.glob(path.name + "*")) + (sorted(path.rglob("*")) if path.is_dir() else []):
        if file.is_file():
            fd = os.open(file, os.O_RDONLY)
            try:
                os.fdatasync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def raw_write(state: dict, path: Path) -> None:
    buffer = np.random.default_rng(0).integers(0, 255, weight_bytes(state), dtype=np.uint8)
    start = time.perf_counter()
    with open(path, "wb") as f:
        f.write(memoryview(buffer))
        f.flush()
        os.fsync(f.fileno())
    return time.perf_counter() - start


def raw_read(path: Path) -> np.ndarray:
    buffer = np.empty(path.stat().st_size, dtype=np.uint8)
    with open(path, "rb", buffering=0) as f:
        view, done = memoryview(buffer), 0
        while done < len(buffer):
            done += f.readinto(view[done:])
    return buffer


def torch_save(state: dict, path: Path) -> None:
    with open(path, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())


def safetensors_save(state: dict, path: Path) -> None:
    safetensors.torch.save_file(state, path)
    fsync_path(path)


def dcp_save(state: dict, path: Path) -> None:
    dcp.save(state, checkpoint_id=path, no_dist=True)  # FileSystemWriter fsyncs its files by default


def dcp_load(path: Path, like: dict) -> dict:
    state = {name: torch.empty_like(t) for name, t in like.items()}
    dcp.load(state, checkpoint_id=path, no_dist=True)
    return state


def save_with_labutils(state: dict, path: Path) -> None:
    save_checkpoint(path, state)


METHODS: list[tuple[str, str, Callable, Callable]] = [
    # name, file name, save(state, path), load(path, like)
    ("raw bytes", "raw.bin", None, lambda p, like: raw_read(p)),
    ("torch.save / torch.load", "state.pt", torch_save, lambda p, like: torch.load(p, weights_only=True)),
    ("torch.load(mmap=True)", "state.pt", None, lambda p, like: torch.load(p, weights_only=True, mmap=True)),
    ("safetensors", "state.safetensors", safetensors_save, lambda p, like: safetensors.torch.load_file(p)),
    ("DCP (1 process)", "dcp", dcp_save, dcp_load),
    ("labutils save/load_checkpoint", "checkpoint.pt", save_with_labutils, lambda p, like: load_checkpoint(p)),
]


def measure(state: dict, folder: Path, repeats: int, warm: bool) -> dict[str, dict[str, list[float]]]:
    """Return {method: {"save": [seconds...], "load": [seconds...]}}, methods interleaved in every repeat."""
    times = {name: {"save": [], "load": []} for name, *_ in METHODS}
    for _ in range(repeats):
        for name, file, save, load in METHODS:
            path = folder / file
            if name == "raw bytes":
                times[name]["save"].append(raw_write(state, path))
            elif save is not None:
                if path.is_dir():
                    shutil.rmtree(path)
                start = time.perf_counter()
                save(state, path)
                times[name]["save"].append(time.perf_counter() - start)
            if not warm:
                drop_cache(path)
            start = time.perf_counter()
            loaded = load(path, state)
            if name != "raw bytes":  # mmap (and safetensors, which maps too) defer reading until first use:
                touch(t for t in loaded.values() if isinstance(t, torch.Tensor))  # as a forward pass would read
            times[name]["load"].append(time.perf_counter() - start)
            del loaded
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warm", action="store_true", help="keep files in the page cache between save and load")
    parser.add_argument("--folder", type=Path, help="where to write (default: a temporary folder under artifacts/)")
    args = parser.parse_args(argv)

    torch.set_num_threads(os.cpu_count() or 1)
    state = wide_mlp(args.megabytes, width=4096 if args.megabytes >= 256 else 1024).state_dict()
    size = weight_bytes(state)
    parent = args.folder or artifacts_dir() / "benchmarks"
    parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=parent) as tmp:
        times = measure(state, Path(tmp), args.repeats, args.warm)

    median = {name: {op: statistics.median(t) if t else None for op, t in ops.items()} for name, ops in times.items()}
    raw_save, raw_load = median["raw bytes"]["save"], median["raw bytes"]["load"]
    print(f"state_dict: {len(state)} tensors, {human(size)}; median of {args.repeats} runs; "
          f"{'warm page cache' if args.warm else 'cold reads (page cache dropped before each load)'}; "
          f"torch {torch.__version__}, {os.cpu_count()} CPUs")
    print()
    print("| method | save s | save GB/s | save / raw | load s | load GB/s | load / raw |")
    print("|---|---|---|---|---|---|---|")
    for name, ops in median.items():
        cells = []
        for op, raw in (("save", raw_save), ("load", raw_load)):
            seconds = ops[op]
            if seconds is None:
                cells += ["–", "–", "–"]
            else:
                cells += [f"{seconds:.2f}", f"{size / seconds / 1e9:.2f}", f"{raw / seconds:.2f}"]
        print(f"| {name} | " + " | ".join(cells) + " |")
    savers = {n: raw_save / o["save"] for n, o in median.items() if o["save"] and n != "raw bytes"}
    loaders = {n: raw_load / o["load"] for n, o in median.items() if n != "raw bytes"}
    best_saver, best_loader = max(savers, key=savers.get), max(loaders, key=loaders.get)
    print()
    print(f"best saver:  {best_saver} at {savers[best_saver]:.2f} x raw write (target 0.80)")
    print(f"best loader: {best_loader} at {loaders[best_loader]:.2f} x raw read (target 0.80)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
