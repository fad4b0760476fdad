"""Checkpoint save and load throughput, each as a ratio to the raw write and read of as many bytes on the same disk.

For a synthetic state_dict (default 1 GiB of float32, the WideMLP of notebook 08) it times, in one run:
  raw            the tensors' bytes written back to back + fsync; read back into fresh memory (readinto)
  disk read      the file read cold into one reused buffer: the disk's own speed
  one pass       the file read cold once and every byte hashed once (16 MiB reads into two buffers, each hashed
                 on a second thread while the next is read): the limit a checked load is measured against
  bound          the slower of the disk read and a sha256 of as many bytes in memory: no load that checks every
                 byte can be faster, even with reading and hashing perfectly overlapped
  torch.save     torch.save + fsync;                 torch.load
  torch.load mmap  (saved as above)                  torch.load(mmap=True), then every page read
  torch.save without CRC-32 (torch.serialization.set_crc32_options(False)); torch.load
  safetensors    safetensors save_file + fsync;      safetensors load_file
  DCP            torch.distributed.checkpoint.save;  dcp.load into fresh tensors (one process)
  save_checkpoint  labutils: temporary file, sha256 while writing, fsync, rename, fsync of the folder;
                 load_checkpoint: sha256 checked, then the checked open file read into tensors of their own;
                 and with mmap=True
Every save ends with its data on the disk (fsync); before every load the files are dropped from the page
cache (posix_fadvise DONTNEED), so loads read the disk, not memory. --warm keeps the cache instead. A load
ends when one byte of every 4 KiB page of every tensor has been read: loaders that map the file (mmap,
safetensors) read it only then, as a forward pass would.
Each save is timed next to a raw write of the same bytes, each load next to a raw read, a disk read and a one
pass of the very file it loads (their order turns from run to run); a ratio is the median over --repeats runs of
the paired times' ratio (raw or limit time / method time), with its range. Then what each piece of
labutils/_tuning.py is worth: save_checkpoint with one piece turned off (sync_file_range; the CRC-32 switch; the
hashing thread), each save paired with a raw write. Then, each in a fresh process, the
peak memory of save_checkpoint and of a checked load_checkpoint(mmap=True) into a meta-device model with
assign=True.
Usage:
    python benchmarks/checkpoint_io.py [--megabytes 1024] [--repeats 5] [--warm] [--folder DIR] [--no-memory]
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import safetensors.torch
import torch
import torch.distributed.checkpoint as dcp

from labutils.checkpoint import load_checkpoint, save_checkpoint
from labutils.large import disk_read, drop_cache, human, raw_write, touch, weight_bytes, wide_mlp
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


def remove(path: Path) -> None:
    """Delete a file or folder (with a labutils checkpoint's .sha256 beside it) if it exists."""
    if path.is_dir():
        shutil.rmtree(path)
    for file in (path, path.with_name(path.name + ".sha256")):
        file.unlink(missing_ok=True)
    os.sync()


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
    before = torch.serialization.get_crc32_options()
    torch.serialization.set_crc32_options(False)
    try:
        torch_save(state, path)
    finally:
        torch.serialization.set_crc32_options(before)


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
    ("save_checkpoint / load_checkpoint", "checkpoint.pt", save_with_labutils, lambda p, like: load_checkpoint(p)),
    ("load_checkpoint(mmap=True)", "checkpoint.pt", None, lambda p, like: load_checkpoint(p, mmap=True)),
]
LAB, LAB_MMAP = METHODS[-2][0], METHODS[-1][0]  # the lab's save and load; its load with mmap=True


def read_raw(path: Path) -> None:
    """Read every byte of a file (or of every file in a folder) into fresh memory."""
    for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
        if file.is_file():
            raw_read(file)


LOAD_PAIRS = ("load", "raw read", "disk read", "one pass")


def one_pass(path: Path, chunk: int = 16 << 20) -> str:
    """Read a file (or every file in a folder) cold once and hash every byte once: each 16 MiB is hashed on a
    second thread while the next is read. Return the sha256 of all the bytes, in the order read."""
    digest, buffers, hashed = hashlib.sha256(), [bytearray(chunk), bytearray(chunk)], [None, None]
    with ThreadPoolExecutor(1) as hasher:
        for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if not file.is_file():
                continue
            with open(file, "rb", buffering=0) as f:
                turn = 0
                while True:
                    if hashed[turn] is not None:
                        hashed[turn].result()
                    count = f.readinto(buffers[turn])
                    if not count:
                        break
                    hashed[turn] = hasher.submit(digest.update, memoryview(buffers[turn])[:count])
                    turn = 1 - turn
            for job in hashed:
                if job is not None:
                    job.result()
    return digest.hexdigest()


def measure(state: dict, folder: Path, repeats: int, warm: bool) -> dict[str, dict[str, list[float]]]:
    """Return {method: {op: [seconds...]}}: save and raw write; load, raw read, disk read, one pass; side by side.

    Every save is paired with a raw write of the same bytes just before it, and every load with a raw read (into
    fresh memory), a disk read (into one reused buffer) and a one pass of the very file it loads, in an order that
    turns from run to run: the disk's speed drifts,
    and a file's blocks may be cached below this machine, so each ratio compares like with like.
    """
    times = {name: {op: [] for op in ("save", "raw write", *LOAD_PAIRS)} for name, *_ in METHODS}
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

            def timed(op: str) -> float:
                gc.collect()  # no tensor of an earlier load may still map the file: mapped pages cannot be dropped
                if not warm:
                    drop_cache(path)
                start = time.perf_counter()
                if op == "load":
                    loaded = load(path, state)
                    # mmap and safetensors map the file and read a page when it is first used: count that reading
                    touch(t for t in loaded.values() if isinstance(t, torch.Tensor))
                elif op == "raw read":
                    read_raw(path)
                elif op == "disk read":
                    disk_read(path)
                else:
                    one_pass(path)
                return time.perf_counter() - start

            read_raw(path)  # untimed: here the first read of a just-written file is several times slower than
            # any later one, even with every page cached (2.3 s against 0.1 s for 1 GiB): keep that out of all
            order = LOAD_PAIRS[repeat % 4:] + LOAD_PAIRS[:repeat % 4]
            results = {op: timed(op) for op in order}
            for op in LOAD_PAIRS:
                times[name][op].append(results[op])
    return times


# What each piece of labutils._tuning is worth: save_checkpoint with one piece turned off at a time.
PIECES = {"all on": {}, "without sync_file_range": {"sync_file_range": False},
          "with torch's CRC-32": {"skip_crc32": False}, "hashing in the writing thread": {"hash_thread": False}}


@contextlib.contextmanager
def _turned_off(sync_file_range=True, skip_crc32=True, hash_thread=True):
    """Run save_checkpoint with the pieces of labutils._tuning given as False turned off, then put them back. They are
    process-wide: measure in one thread, as this script does."""
    from labutils import _tuning, checkpoint

    saved = _tuning.sync_file_range, checkpoint.without_crc32, _tuning.HashingWriter.THREADED
    try:
        if not sync_file_range:
            _tuning.sync_file_range = None
        if not skip_crc32:
            checkpoint.without_crc32 = contextlib.nullcontext
        _tuning.HashingWriter.THREADED = hash_thread
        yield
    finally:
        _tuning.sync_file_range, checkpoint.without_crc32, _tuning.HashingWriter.THREADED = saved


def measure_pieces(state: dict, folder: Path, repeats: int) -> dict[str, tuple[list[float], list[float]]]:
    """Return {variant: (save seconds, raw write seconds)}: each save paired with a raw write just before it, the
    variants in an order that turns from run to run."""
    times = {name: ([], []) for name in PIECES}
    for repeat in range(repeats):
        names = list(PIECES)
        for name in names[repeat % len(names):] + names[:repeat % len(names)]:
            for target in (folder / "piece.pt", folder / "raw.bin"):
                remove(target)
            times[name][1].append(raw_write(state, folder / "raw.bin"))
            with _turned_off(**PIECES[name]):
                start = time.perf_counter()
                save_checkpoint(state, folder / "piece.pt")
                times[name][0].append(time.perf_counter() - start)
    return times


def ratio(raw: list[float], method: list[float]) -> tuple[float, float, float]:
    """Return the median, lowest and highest of the paired ratios raw time / method time."""
    ratios = [r / t for r, t in zip(raw, method)]
    return statistics.median(ratios), min(ratios), max(ratios)


_PEAK_CHILD = """
import json, os, sys, tempfile, torch
from pathlib import Path
from labutils.checkpoint import load_checkpoint, save_checkpoint
from labutils.large import WideMLP, measure_rss, reset_peak, touch, weight_bytes, wide_mlp
what, path, megabytes, width = sys.argv[1], Path(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
with tempfile.TemporaryDirectory() as tiny:  # a first save and load, unmeasured: imports and allocator arenas
    save_checkpoint(wide_mlp(0.1, width=64).state_dict(), Path(tiny) / "tiny.pt")
    load_checkpoint(Path(tiny) / "tiny.pt", mmap=True)
if what == "save":
    state = wide_mlp(megabytes, width=width).state_dict()
    size = weight_bytes(state)
    reset_peak()
    before = measure_rss()
    save_checkpoint(state, path)
else:
    with torch.device("meta"):
        model = WideMLP(width, wide_mlp(megabytes, width=width, device="meta").depth)
    reset_peak()
    before = measure_rss()
    state = load_checkpoint(path, mmap=True)
    state.pop("metadata")  # what save_checkpoint adds: the format, the torch version, the time
    model.load_state_dict(state, assign=True)
    size = touch(model.state_dict().values())
after = measure_rss()
print(json.dumps({"weights": size, "before": before["now"], "peak": after["peak"]}))
"""


def peak_memory(path: Path, megabytes: float, width: int) -> dict[str, dict[str, float]]:
    """Return, for save_checkpoint and a verified load_checkpoint(mmap=True) + assign, each in a fresh process,
    the peak resident memory as a multiple of the weights (the save's includes the weights it saves)."""
    measured = {}
    for what in ("save", "load"):
        done = subprocess.run([sys.executable, "-c", _PEAK_CHILD, what, str(path), str(megabytes), str(width)],
                              capture_output=True, text=True, timeout=1200)
        if done.returncode:
            raise RuntimeError(f"measuring the peak memory of {what} failed:\n{done.stderr[-2000:]}")
        result = json.loads(done.stdout.splitlines()[-1])
        extra = result["peak"] - result["before"]
        # the save starts with the weights in memory; the load starts with none of them
        total = result["peak"] - result["before"] + (result["weights"] if what == "save" else 0)
        measured[what] = {"peak / weights": total / result["weights"], "extra MiB": extra / 2**20}
    return measured


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=1024)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warm", action="store_true", help="keep files in the page cache between save and load")
    parser.add_argument("--folder", type=Path, help="where to write (default: a temporary folder under artifacts/)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    args = parser.parse_args(argv)
    if not args.megabytes > 0 or args.repeats < 1:
        parser.error(f"--megabytes must be above 0 and --repeats at least 1; got {args.megabytes} and {args.repeats}")

    if not args.warm and not hasattr(os, "posix_fadvise"):
        print("this system cannot drop a file from the page cache (no posix_fadvise): the loads read memory, "
              "as with --warm")
        args.warm = True
    torch.set_num_threads(os.cpu_count() or 1)
    width = 4096 if args.megabytes >= 256 else 1024
    state = wide_mlp(args.megabytes, width=width).state_dict()
    size = weight_bytes(state)
    parent = args.folder or artifacts_dir() / "benchmarks"
    parent.mkdir(parents=True, exist_ok=True)
    sha_speed = hash_speed()
    with tempfile.TemporaryDirectory(dir=parent) as tmp:
        times = measure(state, Path(tmp), args.repeats, args.warm)
        pieces = measure_pieces(state, Path(tmp), args.repeats)
        memory = None if args.no_memory else peak_memory(Path(tmp) / "peak.pt", args.megabytes, width)
    for ops in times.values():  # the bound of each load, from the disk read measured beside it
        ops["bound"] = [max(disk, size / (sha_speed * 1e9)) for disk in ops["disk read"]]

    def seconds(values: list[float]) -> str:
        return f"{statistics.median(values):.2f}"

    def speed(values: list[float]) -> str:
        return f"{size / statistics.median(values) / 1e9:.2f}"

    def shown(values: tuple[float, float, float]) -> str:
        return f"{values[0]:.2f} ({values[1]:.2f}–{values[2]:.2f})"

    print(f"state_dict: {len(state)} tensors, {human(size)}; median (lowest–highest) of {args.repeats} paired runs; "
          f"{'warm page cache' if args.warm else 'cold reads (page cache dropped before each load)'}; "
          f"torch {torch.__version__}, {os.cpu_count()} CPUs")
    raw = {op: [t for ops in times.values() for t in ops[op]] for op in ("raw write", "raw read", "disk read",
                                                                         "one pass")}
    print(f"this disk: raw write + fsync {speed(raw['raw write'])} GB/s, raw read into fresh memory "
          f"{speed(raw['raw read'])} GB/s, disk read {speed(raw['disk read'])} GB/s; one pass (read and hash "
          f"every byte once) {speed(raw['one pass'])} GB/s; sha256 in memory {sha_speed:.2f} GB/s; the bound of "
          "a checked load is the slower of the disk read and the sha256")
    print("Ratios are the raw (or limit) time over the method's time, run by run: 1.00 = as fast as it.")
    print()
    print("| method | save s | save GB/s | save / raw write | load s | load GB/s | load / raw read | load / one pass "
          "| load / bound |")
    print("|---|---|---|---|---|---|---|---|---|")
    save_ratio, load_ratio, bound_ratio = {}, {}, {}
    for name, ops in times.items():
        cells = ["–"] * 3
        if ops["save"]:
            save_ratio[name] = ratio(ops["raw write"], ops["save"])
            cells = [seconds(ops["save"]), speed(ops["save"]), shown(save_ratio[name])]
        load_ratio[name] = ratio(ops["one pass"], ops["load"])
        bound_ratio[name] = ratio(ops["bound"], ops["load"])
        cells += [seconds(ops["load"]), speed(ops["load"]), shown(ratio(ops["raw read"], ops["load"])),
                  shown(load_ratio[name]), shown(bound_ratio[name])]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print()
    print(f"save_checkpoint:                     {save_ratio[LAB][0]:.2f} x a raw write + fsync (target 0.80)")
    print(f"load_checkpoint(mmap=True), checked: {load_ratio[LAB_MMAP][0]:.2f} x the one pass (target 0.90), "
          f"{bound_ratio[LAB_MMAP][0]:.2f} x the bound")
    print(f"load_checkpoint(), checked, read:    {load_ratio[LAB][0]:.2f} x the one pass (target 0.70), "
          f"{bound_ratio[LAB][0]:.2f} x the bound")
    print()
    print("What each piece of labutils/_tuning.py is worth: save_checkpoint with one piece off, paired with a raw "
          "write")
    print("| save_checkpoint | save s | save / raw write |")
    print("|---|---|---|")
    for name, (saves, raws) in pieces.items():
        print(f"| {name} | {seconds(saves)} | {shown(ratio(raws, saves))} |")
    if memory is not None:
        print(f"peak memory, each in a fresh process: save_checkpoint {memory['save']['peak / weights']:.2f} x the "
              f"weights, load_checkpoint(mmap=True) into a meta model with assign=True "
              f"{memory['load']['peak / weights']:.2f} x (target 1.15 for both)")
    return 0


def hash_speed(megabytes: int = 256) -> float:
    """Return sha256's speed in memory, in GB/s (the median of three)."""
    data = np.random.default_rng(0).integers(0, 256, megabytes << 20, dtype=np.uint8).tobytes()
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        hashlib.sha256(data).hexdigest()
        runs.append(time.perf_counter() - start)
    return len(data) / statistics.median(runs) / 1e9


if __name__ == "__main__":
    raise SystemExit(main())
