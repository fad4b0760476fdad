import torch
import torch.nn.functional as F

import labutils


def make_run(seed: int, total_steps: int, lr: float) -> dict:
    torch.manual_seed(seed)  # the initial weights, and the Dropout masks that follow, come from this seed
    model = labutils.BatchNormNet()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=total_steps)
    return {"model": model, "optimizer": optimizer, "scheduler": scheduler, "step": 0, "best_acc": 0.0}


def train(run: dict, batch, until_step: int, on_step=None) -> None:
    model, optimizer, scheduler = run["model"], run["optimizer"], run["scheduler"]
    while run["step"] < until_step:
        model.train()  # every step: on_step may have evaluated the model, which left it in eval mode
        images, labels = batch(run["step"])
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()  # once per step, after the optimizer's
        run["step"] += 1
        if on_step is not None:
            on_step(run)
