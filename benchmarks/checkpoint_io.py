"""Checkpoint save and load throughput, each as a ratio to the raw write and read of as many bytes on the same disk.

For a synthetic state_dict (default 1 GiB of float32, the WideMLP of notebook 08) it times, in one run:
  raw            the tensors' bytes written back to back + fsync; read back into fresh memory (readinto)
  torch.save     torch.save + fsync;                 torch.load
  torch.load mmap  (saved as above)                  torch.load(mmap=True), then every page read
  torch.save without CRC-32 (torch.utils.serialization.config.save.compute_crc32 = False); torch.load
  safetensors    safetensors save_file + fsync;      safetensors load_file
  DCP            torch.distributed.checkpoint.save;  dcp.load into fresh tensors (one process)
  save_checkpoint  labutils: temp file, sha256, fsync, rename;  load_checkpoint: verify sha256, then load
Every save ends with its data on the disk (fsync); before every load the files are dropped from the page
cache (posix_fadvise DONTNEED), so loads read the disk, not memory. --warm keeps the cache instead. A load
ends when one byte of every 4 KiB page of every tensor has been read: loaders that map the file (mmap,
safetensors) read it only then, as a forward pass would.
Each save is timed next to a raw write of the same bytes, each load next to a raw read of the very file it
loads (alternating which goes first); a ratio is the median over --repeats runs of raw time / method time.
Usage:
    python benchmarks/checkpoint_io.py [--megabytes 1024] [--repeats 4] [--warm] [--folder DIR]
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
                getattr(os, "fdatasync", os.fsync)(fd)  # macOS has no fdatasync
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)  # main() checked that it exists
            finally:
                os.close(fd)


def remove(path: Path) -> None:
    """Delete a file or folder (with a labutils checkpoint's .sha256 beside it) if it exists."""
    if path.is_dir():
        shutil.rmtree(path)
    for file in (path, path.with_name(path.name + ".sha256")):
        file.unlink(missing_ok=True)
    os.sync()


def raw_write(state: dict, path: Path) -> float:
    """Write the tensors' bytes back to back, then fsync: the least any saver must do. Return the seconds."""
    start = time.perf_counter()
    with open(path, "wb") as f:
        for tensor in state.values():
            f.write(tensor.contiguous().view(torch.uint8).numpy().data)
        f.flush()
        os.fsync(f.fileno())
    return time.perf_counter() - start


def raw_read(path: Path, chunk: int = 16 << 20) -> np.ndarray:
    """Read a file into fresh memory in 16 MiB reads (as a copy tool would) and return it."""
    buffer = np.empty(path.stat().st_size, dtype=np.uint8)
    with open(path, "rb", buffering=0) as f:
        view, done = memoryview(buffer), 0
        while done < len(buffer):
            done += f.readinto(view[done:done + chunk])
    return buffer


def torch_save(state: dict, path: Path) -> None:
    with open(path, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())


def torch_save_without_crc(state: dict, path: Path) -> None:
    """torch.save without the CRC-32 its zip writer computes over every byte (a documented switch)."""
    from torch.utils.serialization import config

    config.save.compute_crc32 = False
    try:
        torch_save(state, path)
    finally:
        config.save.compute_crc32 = True


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
    save_checkpoint(state, path)


METHODS: list[tuple[str, str, Callable | None, Callable]] = [
    # name, file name, save(state, path) or None (loads the file of the method above), load(path, like)
    ("torch.save / torch.load", "state.pt", torch_save, lambda p, like: torch.load(p, weights_only=True)),
    ("torch.load(mmap=True)", "state.pt", None, lambda p, like: torch.load(p, weights_only=True, mmap=True)),
    ("torch.save without CRC-32", "nocrc.pt", torch_save_without_crc, lambda p, like: torch.load(p, weights_only=True)),
    ("safetensors", "state.safetensors", safetensors_save, lambda p, like: safetensors.torch.load_file(p)),
    ("DCP (1 process)", "dcp", dcp_save, dcp_load),
    ("labutils save/load_checkpoint", "checkpoint.pt", save_with_labutils, lambda p, like: load_checkpoint(p)),
]


def read_raw(path: Path) -> None:
    """Read every byte of a file (or of every file in a folder) into fresh memory."""
    for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
        if file.is_file():
            raw_read(file)


def measure(state: dict, folder: Path, repeats: int, warm: bool) -> dict[str, dict[str, list[float]]]:
    """Return {method: {op: [seconds...]}} for op in save, raw write, load, raw read, each pair measured back to back.

    Every save is paired with a raw write of the same bytes just before it, and every load with a raw read of
    the very file it loads (before it in even runs, after it in odd ones): the disk's speed drifts, and a
    file's blocks may be cached below this machine, so each ratio compares like with like.
    """
    times = {name: {"save": [], "raw write": [], "load": [], "raw read": []} for name, *_ in METHODS}
    for repeat in range(repeats):
        for name, file, save, load in METHODS:
            path = folder / file
            if save is not None:
                for target in (path, folder / "raw.bin"):  # each save writes a new file: freeing the old one's
                    remove(target)                          # blocks (a trim on this disk) is not counted
                times[name]["raw write"].append(raw_write(state, folder / "raw.bin"))
                start = time.perf_counter()
                save(state, path)
                times[name]["save"].append(time.perf_counter() - start)

            def timed_load() -> float:
                if not warm:
                    drop_cache(path)
                start = time.perf_counter()
                loaded = load(path, state)
                # mmap and safetensors map the file and read a page when it is first used: count that reading
                touch(t for t in loaded.values() if isinstance(t, torch.Tensor))
                return time.perf_counter() - start

            def timed_read() -> float:
                if not warm:
                    drop_cache(path)
                start = time.perf_counter()
                read_raw(path)
                return time.perf_counter() - start

            read_raw(path)  # untimed: here the first read of a just-written file is several times slower than
            # any later one, even with every page cached (2.3 s against 0.1 s for 1 GiB): keep that out of both
            pair = (timed_load, timed_read) if repeat % 2 else (timed_read, timed_load)
            results = {f: f() for f in pair}
            times[name]["load"].append(results[timed_load])
            times[name]["raw read"].append(results[timed_read])
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=1024)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--warm", action="store_true", help="keep files in the page cache between save and load")
    parser.add_argument("--folder", type=Path, help="where to write (default: a temporary folder under artifacts/)")
    args = parser.parse_args(argv)
    if not args.megabytes > 0 or args.repeats < 1:
        parser.error(f"--megabytes must be above 0 and --repeats at least 1; got {args.megabytes} and {args.repeats}")

    if not args.warm and not hasattr(os, "posix_fadvise"):
        print("this system cannot drop a file from the page cache (no posix_fadvise): the loads read memory, "
              "as with --warm")
        args.warm = True
    torch.set_num_threads(os.cpu_count() or 1)
    state = wide_mlp(args.megabytes, width=4096 if args.megabytes >= 256 else 1024).state_dict()
    size = weight_bytes(state)
    parent = args.folder or artifacts_dir() / "benchmarks"
    parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=parent) as tmp:
        times = measure(state, Path(tmp), args.repeats, args.warm)

    print(f"state_dict: {len(state)} tensors, {human(size)}; median of {args.repeats} runs; "
          f"{'warm page cache' if args.warm else 'cold reads (page cache dropped before each load)'}; "
          f"torch {torch.__version__}, {os.cpu_count()} CPUs")
    print("Ratios are throughput / raw throughput of the same bytes measured next to it: 1.00 = as fast as raw.")
    print()
    print("| method | save s | raw write s | save / raw | load s | raw read s | load / raw |")
    print("|---|---|---|---|---|---|---|")
    save_ratio, load_ratio = {}, {}
    for name, ops in times.items():
        cells = []
        for op, raw, ratios in (("save", "raw write", save_ratio), ("load", "raw read", load_ratio)):
            if not ops[op]:
                cells += ["–", "–", "–"]
                continue
            ratios[name] = statistics.median(r / t for r, t in zip(ops[raw], ops[op]))
            cells += [f"{statistics.median(ops[op]):.2f}", f"{statistics.median(ops[raw]):.2f}", f"{ratios[name]:.2f}"]
        print(f"| {name} | " + " | ".join(cells) + " |")
    best_saver, best_loader = max(save_ratio, key=save_ratio.get), max(load_ratio, key=load_ratio.get)
    print()
    print(f"best saver:  {best_saver} at {save_ratio[best_saver]:.2f} x raw write (target 0.80)")
    print(f"best loader: {best_loader} at {load_ratio[best_loader]:.2f} x raw read (target 0.80)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
