"""Save a model sharded over several processes with torch.distributed.checkpoint; notebook 08 runs it.

    torchrun --standalone --nproc-per-node 2 scripts/dcp_sharded.py FOLDER [--megabytes 64] [--seed 0]
                                                                          [--steps 3]

Every process builds the same WideMLP from the seed, keeps only its half of every tensor (a DTensor sharded
on dim 0 over a CPU device mesh), then saves:
  FOLDER/sync   with dcp.save: the training loop waits until the files are written;
  FOLDER/async  with dcp.async_save: the loop waits only while the state is copied, then trains on
                (`--steps` updates) while a background thread writes.
  FOLDER/fsdp   what training code does: a Net sharded with FSDP2 (`fully_shard`) takes an Adam step, and
                `get_state_dict` gives its model and optimizer state as DTensor shards for `dcp.save`; a second
                Net, built from another seed, gets them back through `dcp.load` and `set_state_dict`.
  FOLDER/fsdp_full.pt  the same sharded Net's weights gathered into one plain state_dict
                (`get_model_state_dict` with `full_state_dict=True, cpu_offload=True`), saved by rank 0 alone.
  FOLDER/ddp    with two processes or more, notebook 08's section 5 in the same processes (starting processes
                costs seconds): `demonstrations` of scripts/ddp_save.py, a rank 0 alone at a barrier waiting
                `--barrier-timeout` seconds.
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
from torch.distributed.checkpoint.state_dict import (StateDictOptions, get_model_state_dict, get_state_dict,
                                                     set_state_dict)
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard
from torch.distributed.tensor import DTensor, Shard, distribute_tensor

from labutils.large import weight_bytes, wide_mlp
from labutils.models import Net


def sharded_net(seed: int, mesh) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    """A Net whose parameters FSDP2 shards over the mesh (each process keeps its rows), and its Adam."""
    torch.manual_seed(seed)
    # One call on the root makes the whole Net one unit, gathered whole for each forward: enough for a tiny model.
    # For a real one, shard each block first and the root last, so that one block at a time is gathered:
    #     for block in model.blocks: fully_shard(block, mesh=mesh)
    #     fully_shard(model, mesh=mesh)
    net = fully_shard(Net(), mesh=mesh)
    return net, torch.optim.Adam(net.parameters(), lr=1e-3)


def fsdp_round_trip(folder: Path, seed: int, mesh) -> dict:
    """Save a sharded Net and its Adam state after one step, restore them into another; say what held."""
    net, optimizer = sharded_net(seed, mesh)
    images = torch.randn(8, 1, 28, 28, generator=torch.Generator().manual_seed(seed))
    net(images).sum().backward()
    optimizer.step()
    model_state, optimizer_state = get_state_dict(net, optimizer)  # DTensor shards, keyed by parameter name
    dcp.save({"model": model_state, "optimizer": optimizer_state}, checkpoint_id=folder)
    # One plain file instead: every rank takes part in gathering the shards (a collective), rank 0 alone gets them,
    # on the CPU (cpu_offload=True: the whole model never sits in one GPU's memory), and saves.
    full = get_model_state_dict(net, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    if dist.get_rank() == 0:
        torch.save(full, folder.parent / "fsdp_full.pt")
    dist.barrier()  # nobody goes on (or loads the file) before it is written

    other, other_optimizer = sharded_net(seed + 1, mesh)
    model_state, optimizer_state = get_state_dict(other, other_optimizer)  # the layout to load into
    state = {"model": model_state, "optimizer": optimizer_state}
    dcp.load(state, checkpoint_id=folder)
    set_state_dict(other, other_optimizer, model_state_dict=state["model"], optim_state_dict=state["optimizer"])
    saved, restored = get_state_dict(net, optimizer), get_state_dict(other, other_optimizer)
    weight = saved[0]["conv1.weight"]
    return {"fsdp_full_keys": len(full), "fsdp_full_types": sorted({type(t).__name__ for t in full.values()}),
            "fsdp_weight_type": type(weight).__name__, "fsdp_local_shape": list(weight.to_local().shape),
            "fsdp_global_shape": list(weight.shape), "fsdp_optimizer_keys": sorted(saved[1]["state"]["conv1.weight"]),
            "fsdp_model_equal": all(torch.equal(saved[0][k].to_local(), restored[0][k].to_local()) for k in saved[0]),
            "fsdp_optimizer_equal": all(torch.equal(v.to_local(), restored[1]["state"][k][name].to_local())
                                        for k, moments in saved[1]["state"].items() for name, v in moments.items()
                                        if isinstance(v, DTensor)),
            "fsdp_same_output": torch.equal(net(images), other(images))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--megabytes", type=float, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--barrier-timeout", type=float, default=2.0)
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
    fsdp = fsdp_round_trip(args.folder / "fsdp", args.seed, mesh)
    report = fsdp | {
        "rank": rank, "world": world, "full_bytes": full_bytes, "local_bytes": local_bytes,
        "local_shape": list(weight.to_local().shape), "global_shape": list(weight.shape),
        "sync_blocked": sync_blocked, "async_blocked": async_blocked,
        "trained_while_saving": trained_while_saving, "async_total": async_total,
        "local_sum_after_training": float(weight.to_local().double().sum()),
    }
    (args.folder / f"rank-{rank}.json").write_text(json.dumps(report, indent=1))
    dist.barrier()
    if world >= 2:
        from ddp_save import demonstrations  # beside this script

        demonstrations((args.folder / "ddp").resolve(), args.seed, args.steps, args.barrier_timeout)
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
