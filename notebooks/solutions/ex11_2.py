def lab_resume_state(checkpoint: dict, steps_per_epoch: int) -> dict:
    step = checkpoint["global_step"]  # optimizer steps: the same count at any moment of the run
    epoch, batch = divmod(step, steps_per_epoch)  # not checkpoint["epoch"], the epoch the save happened in
    return {
        "model": {name.removeprefix("net."): tensor for name, tensor in checkpoint["state_dict"].items()},
        "optimizer": checkpoint["optimizer_states"][0],  # one per optimizer
        "scheduler": checkpoint["lr_schedulers"][0],  # one per scheduler
        "step": step,
        "epoch": epoch,
        "batch": batch,
    }
