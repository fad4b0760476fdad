def save_state(run) -> dict:
    return {"model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
            "scheduler": run.scheduler.state_dict(),
            "scaler": run.scaler.state_dict(),  # its scale and growth tracker: a new one starts from 65536 and 0
            "ema": run.ema.state_dict(),  # the whole AveragedModel: the averaged weights and n_averaged
            "order": run.order.get_state(),  # where the generator that picks the batches is
            "step": run.step}


def load_state(run, state: dict) -> None:
    run.model.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    run.scaler.load_state_dict(state["scaler"])
    run.ema.load_state_dict(state["ema"])
    run.order.set_state(state["order"])
    run.step = state["step"]
