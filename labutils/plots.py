"""Plots the notebooks share: digits, training curves, confusion matrices, layer sizes and weights."""
from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import matplotlib.pyplot as plt
from matplotlib import font_manager
from matplotlib.patches import Patch
import pandas as pd
import torch

from .data import MEAN, STD
from .i18n import N_, language, set_language, translate

# Fonts that draw Simplified Chinese, in the order they are preferred: Linux (Noto, Source Han, WenQuanYi), Windows,
# macOS, and the one Microsoft Office installs.
CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei",
             "SimHei", "Microsoft YaHei", "PingFang SC", "Heiti SC", "Arial Unicode MS")
NO_CJK_FONT = ("图中的文字暂用英文显示：matplotlib 没有找到中文字体。安装一个中文字体（Debian/Ubuntu："
               "`sudo apt-get install fonts-noto-cjk`；conda：`conda install -c conda-forge font-ttf-noto-cjk`；"
               "macOS 和 Windows 已自带），再重启内核（内核 → 重启内核…），图中就会显示中文。")
_told_no_font = False
Drawing = TypeVar("Drawing", bound=Callable)


@functools.cache
def cjk_font() -> str | None:
    """Return the name of a font that matplotlib can draw Chinese with (the first of CJK_FONTS found), or None."""
    def first_known() -> str | None:
        known = {entry.name for entry in font_manager.fontManager.ttflist}
        return next((name for name in CJK_FONTS if name in known), None)

    if first_known() is None:
        # matplotlib keeps the fonts it found in a cache, so a font installed after that is not in it yet: add the
        # font files it does not know (the system's, and a conda environment's fonts/)
        seen = {entry.fname for entry in font_manager.fontManager.ttflist}
        folders = [str(folder) for folder in (Path(sys.prefix) / "fonts", Path(sys.prefix) / "Library" / "fonts")
                   if folder.is_dir()]
        for path in {*font_manager.findSystemFonts(), *font_manager.findSystemFonts(folders)} - seen:
            try:
                font_manager.fontManager.addfont(path)
            except (OSError, RuntimeError, ValueError):  # a file FreeType cannot read is not a font we want
                pass
    return first_known()


def _in_chosen_language(draw: Drawing) -> Drawing:
    """Let `draw` label its figure in the learner's language: in Chinese with a CJK font when there is one (set in
    an rcParams context, so the learner's own settings stay as they are), and in English, with one line that says
    which font to install, when there is none (never boxes in place of characters)."""
    @functools.wraps(draw)
    def drawn_in_language(*args, **kwargs):
        global _told_no_font
        if language() == "en":
            return draw(*args, **kwargs)
        font = cjk_font()
        if font is None:
            if not _told_no_font:
                print(NO_CJK_FONT)
                _told_no_font = True
            chosen = language()
            set_language("en")
            try:
                return draw(*args, **kwargs)
            finally:
                set_language(chosen)
        with plt.rc_context({"font.family": [font, *plt.rcParams["font.family"]]}):
            return draw(*args, **kwargs)
    return drawn_in_language


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


@_in_chosen_language
def training_curves(history: list[dict]) -> plt.Figure:
    """Plot the loss of every batch and each epoch's train and test accuracy."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 3.6))
    losses = [loss for epoch in history for loss in epoch["batch_losses"]]
    per_epoch = len(history[0]["batch_losses"])
    steps = [(i + 1) / per_epoch for i in range(len(losses))]
    ax_loss.plot(steps, losses, lw=0.6, alpha=0.5, label=translate(N_("batch loss")))
    window = max(1, per_epoch // 10)
    smooth = pd.Series(losses).rolling(window, min_periods=1).mean()
    ax_loss.plot(steps, smooth, lw=1.8, label=translate(N_(f"mean of {window} batches")))
    ax_loss.plot([h["epoch"] for h in history], [h["test_loss"] for h in history], "o-",
                 label=translate(N_("test loss")))
    ax_loss.set(xlabel=translate(N_("epoch")), ylabel=translate(N_("cross-entropy")), yscale="log",
                title=translate(N_("Loss")))
    ax_loss.legend()
    epochs = [h["epoch"] for h in history]
    ax_acc.plot(epochs, [100 * h["train_acc"] for h in history], "o-", label=translate(N_("train (during the epoch)")))
    ax_acc.plot(epochs, [100 * h["test_acc"] for h in history], "o-", label=translate(N_("test (after the epoch)")))
    ax_acc.set(xlabel=translate(N_("epoch")), ylabel=translate(N_("accuracy (%)")), title=translate(N_("Accuracy")),
               xticks=epochs)
    ax_acc.legend()
    fig.tight_layout()
    return fig


def confusion_matrix(predicted: torch.Tensor, labels: torch.Tensor, classes: int = 10) -> torch.Tensor:
    """Return counts[true, predicted] for integer class predictions."""
    return torch.bincount(labels.cpu() * classes + predicted.cpu(), minlength=classes * classes).view(classes, classes)


@_in_chosen_language
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
    ax.set(xlabel=translate(N_("predicted digit")), ylabel=translate(N_("true digit")), xticks=range(10),
           yticks=range(10), title=translate(N_("Confusion matrix (mistakes in red)")))
    fig.tight_layout()
    return fig


@_in_chosen_language
def layer_sizes(table: pd.DataFrame) -> plt.Figure:
    """Draw a horizontal bar chart of the elements in each state_dict entry (from state_dict_table)."""
    fig, ax = plt.subplots(figsize=(7, 0.32 * len(table) + 1))
    colours = ["tab:blue" if kind == "parameter" else "tab:orange" for kind in table["kind"]]
    ax.barh(table.index[::-1], table["elements"][::-1], color=colours[::-1])
    for y, value in enumerate(table["elements"][::-1]):
        ax.text(value, y, f" {value:,}", va="center", fontsize=8)
    ax.set(xscale="log", xlabel=translate(N_("elements (log scale)")),
           title=translate(N_("What is inside the state_dict")))
    ax.margins(x=0.25)
    ax.set_xlim(left=0.5)
    ax.legend(handles=[Patch(color="tab:blue", label=translate(N_("parameter"))),
                       Patch(color="tab:orange", label=translate(N_("buffer")))], loc="lower right")
    fig.tight_layout()
    return fig


@_in_chosen_language
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
            ax.set(xlabel=translate(N_("input")), ylabel=translate(N_("output")))
            fig.colorbar(image, ax=ax)
        else:
            ax.bar(range(t.numel()), t.flatten().numpy())
            ax.set(xlabel=translate(N_("index")), ylabel=translate(N_("value")))
    fig.suptitle(title)
    fig.tight_layout()
    return fig
