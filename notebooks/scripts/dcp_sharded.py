"""Save a model sharded over several processes with torch.distributed.checkpoint; notebook 08 runs it.

    torchrun --standalone --nproc-per-node 2 scripts/dcp_sharded.py FOLDER [--megabytes 64] [--seed 0]
                                                                          [--steps 3]

Every process builds the same WideMLP from the seed, keeps only its half of every tensor (a DTensor sharded
on dim 0 over a CPU device mesh), then saves:
  FOLDER/sync   with dcp.save: the training loop waits until the files are written;
  FOLDER/async  with dcp.async_save: the loop waits only while the state is copied, then trains on
                (`--steps` updates) while a background thread writes.
Each process writes FOLDER/rank-N.json with what it held and how long each save blocked it.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.tensor import DTensor, Shard, distribute_tensor

from labutils.large import weight_bytes, wide_mlp


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--megabytes", type=float, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args(argv)

    dist.init_process_group("gloo")  # gloo: the CPU backend (nccl is for GPUs)
    rank, world = dist.get_rank(), dist.get_world_size()
    mesh = init_device_mesh("cpu", (world,))

    # Same seed, same full weights on every process; each keeps its shard (rows rank*n/world ...) and drops the rest.
    full = wide_mlp(args.megabytes, seed=args.seed).state_dict()
    state = {name: distribute_tensor(tensor, mesh, [Shard(0)]) for name, tensor in full.items()}
    full_bytes = weight_bytes(full)
    del full
    local_bytes = sum(t.to_local().numel() * t.element_size() for t in state.values())

    start = time.perf_counter()
    dcp.save(state, checkpoint_id=args.folder / "sync")
    sync_blocked = time.perf_counter() - start

    start = time.perf_counter()
    future = dcp.async_save(state, checkpoint_id=args.folder / "async")
    async_blocked = time.perf_counter() - start
    with torch.no_grad():  # "training" goes on while the checkpoint is written: change every weight
        for _ in range(args.steps):
            for tensor in state.values():
                tensor.mul_(0.5)
    trained_while_saving = time.perf_counter() - start
    future.result()  # the checkpoint is complete (a real loop checks this before the next save)
    async_total = time.perf_counter() - start

    weight = state["layers.0.weight"]
    assert isinstance(weight, DTensor)
    report = {
        "rank": rank, "world": world, "full_bytes": full_bytes, "local_bytes": local_bytes,
        "local_shape": list(weight.to_local().shape), "global_shape": list(weight.shape),
        "sync_blocked": sync_blocked, "async_blocked": async_blocked,
        "trained_while_saving": trained_while_saving, "async_total": async_total,
        "local_sum_after_training": float(weight.to_local().double().sum()),
    }
    (args.folder / f"rank-{rank}.json").write_text(json.dumps(report, indent=1))
    dist.barrier()
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
