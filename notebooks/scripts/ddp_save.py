"""Save and load from several processes that train one model with DDP; notebook 08 runs it.

    torchrun --standalone --nproc-per-node 2 scripts/ddp_save.py FOLDER [--seed 0] [--steps 3] [--timeout 2]

Notebook 08 does not start processes for it: scripts/dcp_sharded.py calls `demonstrations` at its end, in the
processes it already runs (every start of a process costs seconds). Run alone, as above, it does the same.

Every process (two or more) trains the same tiny model with DistributedDataParallel over gloo (the CPU backend),
each on its own batches, then, in FOLDER:
  1. rank 0 saves behind a barrier and every rank loads that file (the right way); then rank 0 saves again while
     rank 1, ahead of it with no barrier, loads the file that was already there;
  2. only rank 0 reaches a barrier (inside `if rank == 0:`), in a group whose timeout is `--timeout` seconds:
     once with `dist.barrier`, once with `dist.monitored_barrier`;
  3. every rank writes the same file: one after the other, then at the same time (rank 1 truncates and rewrites
     the file while rank 0 is halfway through it); then the two fixes: a file per rank, and an atomic rename;
  4. rank 0 saves the model as `torch.save` writes it on a GPU (every tensor labelled `cuda:0`), and every rank
     records where `torch.load` would put each tensor without `map_location`, with a dict, and with "cpu".
Each process writes FOLDER/ddp-rank-N.json with what it saw. The demonstrations that go wrong are ordered on
purpose (a barrier lets one rank run ahead), so that every run shows the same outcome.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import threading
import time
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP


def tiny_model(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4))


def train(model: DDP, steps: int, rank: int) -> None:
    """A few SGD steps, each rank on its own batches; DDP averages the gradients, so the weights stay equal."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    generator = torch.Generator().manual_seed(1000 + rank)  # different data on every rank
    for _ in range(steps):
        x, y = torch.randn(8, 16, generator=generator), torch.randint(0, 4, (8,), generator=generator)
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()  # backward() all-reduces the gradients
        optimizer.step()


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def error_text(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


def rank0_saves(model: DDP, rank: int, steps: int) -> dict:
    """1. Save once, on rank 0, behind a barrier; every rank loads the same file. Then the same without a barrier."""
    # --- the right way ---
    if rank == 0:
        torch.save(model.module.state_dict(), "model.pt")  # .module: the model inside DDP, keys without "module."
    dist.barrier()  # every rank waits here until rank 0 has written the file
    loaded = torch.load("model.pt", map_location="cpu", weights_only=True)
    report = {"loaded_equals_own_model": same(loaded, model.module.state_dict()),
              "loaded_sum": float(sum(t.double().sum() for t in loaded.values()))}

    # --- no barrier before the load: rank 1 runs ahead and reads the file of the previous save ---
    train(model, steps, rank)  # training goes on: the weights change
    if rank == 1:
        early = torch.load("model.pt", map_location="cpu", weights_only=True)  # before rank 0 has saved again
    dist.barrier()  # lab plumbing: fixes the order a faster rank 1 would give (rank 0 saves after rank 1 has read)
    if rank == 0:
        torch.save(model.module.state_dict(), "model.pt")
    dist.barrier()  # lab plumbing: the other ranks read after the save
    if rank != 1:
        early = torch.load("model.pt", map_location="cpu", weights_only=True)
    report["no_barrier_loaded_equals_own_model"] = same(early, model.module.state_dict())
    dist.barrier()
    return report


def only_rank0_waits(rank: int, timeout: float) -> dict:
    """2. A collective that only rank 0 reaches: it waits for rank 1 until the group's timeout."""
    report = {}
    late = dist.new_group(backend="gloo", timeout=timedelta(seconds=timeout))  # every rank creates the group
    monitored = dist.new_group(backend="gloo", timeout=timedelta(seconds=timeout))

    def alone_at(name: str, barrier) -> None:
        start = time.perf_counter()
        try:
            barrier()
        except RuntimeError as err:
            report[f"{name}_error"] = error_text(err)
        report[f"{name}_waited"] = time.perf_counter() - start

    if rank == 0:
        torch.save({"step": torch.tensor(1)}, "only_rank0.pt")
        # the mistake: a barrier inside `if rank == 0:`, so rank 1 never comes; dist.barrier, and
        # dist.monitored_barrier (gloo only), which names the rank that did not come
        plain = threading.Thread(target=alone_at, args=("barrier", lambda: dist.barrier(group=late)))
        plain.start()  # lab plumbing: both wait at once, in two threads, so that the demonstration costs one timeout
        alone_at("monitored_barrier",
                 lambda: dist.monitored_barrier(group=monitored, timeout=timedelta(seconds=timeout)))
        plain.join()
    dist.barrier()  # lab plumbing: rank 1 waits here, in the default group, until rank 0 gives up
    return report


def every_rank_writes(rank: int, world: int) -> dict:
    """3. Every rank writes the same file; then a file per rank, and an atomic rename."""
    # What each rank saves is filled with its rank number, so that the file shows whose bytes it holds.
    mine = {f"part{i}": torch.full((256,), float(rank)) for i in range(8)}
    report = {}

    def whose(path: str):
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 - what a torn file gives is the point
            return error_text(err)
        return [int(t[0]) if bool((t == t[0]).all()) else "mixed" for t in state.values()]

    # one after the other: the last writer wins, the other save is lost without a word
    for writer in range(world):
        if rank == writer:
            torch.save(mine, "shared_in_turn.pt")
        dist.barrier()
    report["in_turn"] = whose("shared_in_turn.pt")

    # at the same time: rank 0 is halfway through writing when rank 1 opens the file (which truncates it) and
    # writes all of its own; then rank 0 writes its second half at the offset where it had stopped
    Path(f"rank{rank}").mkdir(exist_ok=True)
    torch.save(mine, f"rank{rank}/shared.pt")  # lab plumbing: the bytes torch.save writes, so that rank 0 can stop
    data = Path(f"rank{rank}/shared.pt").read_bytes()  # halfway (the same name: torch.save names its records by it)
    half = len(data) // 2
    if rank == 0:
        file = open("shared.pt", "wb")  # noqa: SIM115 - closed below, after the other rank has written
        file.write(data[:half])
        file.flush()
    dist.barrier()  # lab plumbing: the interleaving two ranks can hit by chance, made to happen every run
    if rank == 1:
        torch.save(mine, "shared.pt")
    dist.barrier()
    if rank == 0:
        file.write(data[half:])
        file.close()
    dist.barrier()
    report["at_once"] = whose("shared.pt")
    report["file_bytes"] = len(data)

    # fix 1: one file per rank (for what differs per rank: its RNG state, its data position)
    torch.save(mine, f"shared-rank{rank}.pt")
    dist.barrier()
    report["per_rank_files"] = [whose(f"shared-rank{r}.pt") for r in range(world)]

    # fix 2: write a temporary file of your own, then rename it: the name always points at one whole file
    temporary = f"shared_atomic.pt.tmp-rank{rank}"
    if rank == 0:
        file = open(temporary, "wb")  # noqa: SIM115
        file.write(data[:half])
        file.flush()
    dist.barrier()
    if rank == 1:
        torch.save(mine, temporary)
        os.replace(temporary, "shared_atomic.pt")
    dist.barrier()
    if rank == 0:
        file.write(data[half:])
        file.close()
        os.replace(temporary, "shared_atomic.pt")
    dist.barrier()
    report["atomic_rename"] = whose("shared_atomic.pt")
    dist.barrier()
    return report


def where_it_goes(path: str, map_location) -> list[str]:
    """Return the device each tensor of `path` would be restored to, as torch.load decides it, without a GPU."""
    targets = []

    def record(storage, location):
        targets.append(location)
        return storage  # stays on the CPU: this machine has no GPU

    if map_location is None:  # torch.load's default: the location written in the file
        torch.load(path, map_location=record, weights_only=True)
    elif isinstance(map_location, dict):  # as torch.serialization applies a dict: map_location.get(label, label)
        torch.load(path, map_location=lambda storage, location: record(storage, map_location.get(location, location)),
                   weights_only=True)
    else:
        torch.load(path, map_location=lambda storage, location: record(storage, str(map_location)), weights_only=True)
    return targets


def map_location_per_rank(model: DDP, rank: int) -> dict:
    """4. A file saved on GPU 0, loaded by every rank: where its tensors go."""
    if rank == 0:
        # torch.save on a GPU writes each tensor's device ("cuda:0") as its location; on this CPU a hook writes it
        torch.serialization.register_package(1, lambda storage: "cuda:0", lambda storage, location: None)
        torch.save(model.module.state_dict(), "from_gpu0.pt")
    dist.barrier()
    local_rank = int(os.environ["LOCAL_RANK"])
    report = {"local_rank": local_rank,
              "map_none": sorted(set(where_it_goes("from_gpu0.pt", None))),
              "map_dict": sorted(set(where_it_goes("from_gpu0.pt", {"cuda:0": f"cuda:{local_rank}"}))),
              "map_cpu": sorted(set(where_it_goes("from_gpu0.pt", "cpu")))}
    try:
        torch.load("from_gpu0.pt", weights_only=True)  # no map_location, on a machine without a GPU
    except RuntimeError as err:
        report["load_without_gpu_error"] = error_text(err)
    report["cpu_load_equals_model"] = same(torch.load("from_gpu0.pt", map_location="cpu", weights_only=True),
                                           model.module.state_dict())
    dist.barrier()
    return report


def demonstrations(folder: Path, seed: int, steps: int, timeout: float) -> dict:
    """Run 1-4 in this process's group (two ranks or more), in `folder`; write and return this rank's report."""
    rank, world = dist.get_rank(), dist.get_world_size()
    assert world >= 2, "the demonstrations need two processes or more"
    folder.mkdir(parents=True, exist_ok=True)
    with contextlib.chdir(folder):  # file names below are relative: the messages name no machine path
        model = DDP(tiny_model(seed + rank))  # a different seed per rank: DDP copies rank 0's weights to all
        start_equal = same(model.module.state_dict(), tiny_model(seed).state_dict())
        train(model, steps, rank)
        report = {"rank": rank, "world": world, "started_from_rank0_weights": start_equal}
        report |= rank0_saves(model, rank, steps)
        report |= only_rank0_waits(rank, timeout)
        report |= every_rank_writes(rank, world)
        report |= map_location_per_rank(model, rank)
        Path(f"ddp-rank-{rank}.json").write_text(json.dumps(report, indent=1))
    dist.barrier()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds rank 0 waits alone at a barrier")
    args = parser.parse_args(argv)
    dist.init_process_group("gloo")  # gloo: the CPU backend
    demonstrations(args.folder.resolve(), args.seed, args.steps, args.timeout)
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
