"""Plots the notebooks share: digits, training curves, confusion matrices, layer sizes and weights."""
from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import Patch
import pandas as pd
import torch

from .data import MEAN, STD


def _as_pixels(image: torch.Tensor) -> torch.Tensor:
    """Return a 28×28 image in [0, 1], whether it came normalised, as uint8 or with a channel axis."""
    image = image.detach().cpu().squeeze()
    if image.dtype == torch.uint8:
        return image.float() / 255
    return (image * STD + MEAN).clamp(0, 1) if image.min() < 0 else image


def digit_grid(images: torch.Tensor, labels: torch.Tensor, *, captions: list[str] | None = None,
               columns: int = 8, title: str | None = None) -> plt.Figure:
    """Draw images in a grid, each captioned with its label (or with the caption given)."""
    rows = -(-len(images) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.1, rows * 1.25), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(images):
            ax.imshow(_as_pixels(images[i]).numpy(), cmap="gray_r", vmin=0, vmax=1)
            ax.set_title(captions[i] if captions else str(int(labels[i])), fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def training_curves(history: list[dict]) -> plt.Figure:
    """Plot the loss of every batch and each epoch's train and test accuracy."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 3.6))
    losses = [loss for epoch in history for loss in epoch["batch_losses"]]
    per_epoch = len(history[0]["batch_losses"])
    steps = [(i + 1) / per_epoch for i in range(len(losses))]
    ax_loss.plot(steps, losses, lw=0.6, alpha=0.5, label="batch loss")
    window = max(1, per_epoch // 10)
    smooth = pd.Series(losses).rolling(window, min_periods=1).mean()
    ax_loss.plot(steps, smooth, lw=1.8, label=f"mean of {window} batches")
    ax_loss.plot([h["epoch"] for h in history], [h["test_loss"] for h in history], "o-", label="test loss")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", yscale="log", title="Loss")
    ax_loss.legend()
    epochs = [h["epoch"] for h in history]
    ax_acc.plot(epochs, [100 * h["train_acc"] for h in history], "o-", label="train (during the epoch)")
    ax_acc.plot(epochs, [100 * h["test_acc"] for h in history], "o-", label="test (after the epoch)")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="Accuracy", xticks=epochs)
    ax_acc.legend()
    fig.tight_layout()
    return fig


def confusion_matrix(predicted: torch.Tensor, labels: torch.Tensor, classes: int = 10) -> torch.Tensor:
    """Return counts[true, predicted] for integer class predictions."""
    return torch.bincount(labels.cpu() * classes + predicted.cpu(), minlength=classes * classes).view(classes, classes)


def plot_confusion(counts: torch.Tensor) -> plt.Figure:
    """Draw a confusion matrix with the off-diagonal mistakes labelled."""
    fig, ax = plt.subplots(figsize=(5.6, 5))
    errors = counts.clone().fill_diagonal_(0)
    ax.imshow(errors.numpy(), cmap="Reds")
    dark = errors.max().item() / 2
    for t in range(counts.shape[0]):
        for p in range(counts.shape[1]):
            value = int(counts[t, p])
            if t == p:
                ax.text(p, t, value, ha="center", va="center", fontsize=7, color="tab:green", weight="bold")
            elif value:
                ax.text(p, t, value, ha="center", va="center", fontsize=7, color="white" if value > dark else "black")
    ax.set(xlabel="predicted digit", ylabel="true digit", xticks=range(10), yticks=range(10),
           title="Confusion matrix (mistakes in red)")
    fig.tight_layout()
    return fig


def layer_sizes(table: pd.DataFrame) -> plt.Figure:
    """Draw a horizontal bar chart of the elements in each state_dict entry (from state_dict_table)."""
    fig, ax = plt.subplots(figsize=(7, 0.32 * len(table) + 1))
    colours = ["tab:blue" if kind == "parameter" else "tab:orange" for kind in table["kind"]]
    ax.barh(table.index[::-1], table["elements"][::-1], color=colours[::-1])
    for y, value in enumerate(table["elements"][::-1]):
        ax.text(value, y, f" {value:,}", va="center", fontsize=8)
    ax.set(xscale="log", xlabel="elements (log scale)", title="What is inside the state_dict")
    ax.margins(x=0.25)
    ax.set_xlim(left=0.5)
    ax.legend(handles=[Patch(color="tab:blue", label="parameter"), Patch(color="tab:orange", label="buffer")],
              loc="lower right")
    fig.tight_layout()
    return fig


def weight_picture(tensor: torch.Tensor, title: str = "") -> plt.Figure:
    """Draw a weight tensor: each 2-D kernel of a convolution, a matrix as a heatmap, a vector as bars."""
    t = tensor.detach().float().cpu()
    limit = float(t.abs().max()) or 1.0
    if t.dim() == 4:
        out_ch, in_ch = t.shape[:2]
        side = 1.0 if in_ch == 1 else 0.55
        fig, axes = plt.subplots(in_ch, out_ch, figsize=(out_ch * side + 0.5, in_ch * side + 0.7), squeeze=False)
        for i in range(in_ch):
            for o in range(out_ch):
                axes[i, o].imshow(t[o, i].numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit)
                axes[i, o].axis("off")
    else:
        fig, ax = plt.subplots(figsize=(7, 2.6))
        if t.dim() == 2:
            image = ax.imshow(t.numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
            ax.set(xlabel="input", ylabel="output")
            fig.colorbar(image, ax=ax)
        else:
            ax.bar(range(t.numel()), t.flatten().numpy())
            ax.set(xlabel="index", ylabel="value")
    fig.suptitle(title)
    fig.tight_layout()
    return fig
