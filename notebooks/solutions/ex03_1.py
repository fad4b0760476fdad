def make_checkpoint(model, optimizer, scheduler, epoch, loss):
    return {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": None if scheduler is None else scheduler.state_dict(),  # None: the loop had no schedule
        "epoch": int(epoch),  # a NumPy integer would need NumPy's globals to load with weights_only=True
        # tensors and NumPy values have .item(), which gives a Python number; a float is one already
        "loss": loss.item() if hasattr(loss, "item") else float(loss),
    }
