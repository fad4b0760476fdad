def make_checkpoint(model, optimizer, epoch, loss):
    return {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "epoch": epoch,
        "loss": loss.item(),  # a Python float: it loads with weights_only=True and holds no graph
    }
