"""Draw the figures that the notebooks' markdown shows; `make images` runs this and overwrites them.

Usage: python images/make_images.py [OUTPUT_FOLDER]   (default: the folder of this script)
"""
from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

from labutils import Net  # noqa: E402

PNG_OPTIONS = {"dpi": 110, "metadata": {"Software": None}}  # no version stamp: the same figure gives the same file


def box(ax, x, y, w, h, text, colour, size=10, weight=None):
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.08",
                                fc=colour, ec="#333333", lw=1.2))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=size, weight=weight, family="DejaVu Sans")


def arrow(ax, start, end, text=None, offset=0.18):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=16, lw=1.4, color="#333333"))
    if text:
        ax.text((start[0] + end[0]) / 2, (start[1] + end[1]) / 2 + offset, text, ha="center", va="bottom",
                fontsize=9, family="DejaVu Sans Mono")


def state_dict_figure() -> plt.Figure:
    """A Net's modules on the left, its state_dict (name -> tensor) on the right."""
    state = Net().state_dict()
    fig, ax = plt.subplots(figsize=(9.5, 5.2))
    ax.set(xlim=(0, 10), ylim=(0, 11.2))
    ax.axis("off")
    ax.text(1.6, 10.6, "the model (code + tensors)", ha="center", fontsize=11, weight="bold")
    ax.text(7.1, 10.6, "model.state_dict(): name → tensor", ha="center", fontsize=11, weight="bold")
    layers = ["conv1", "conv2", "fc1", "fc2", "fc3"]
    for i, name in enumerate(layers):
        y = 8.6 - i * 2.0
        module = getattr(Net(), name)
        box(ax, 0.2, y, 2.8, 1.3, f"{name}\n{type(module).__name__}", "#cfe2f3", size=10)
        for j, suffix in enumerate(("weight", "bias")):
            key = f"{name}.{suffix}"
            shape = "×".join(map(str, state[key].shape))
            yy = y + 0.7 - j * 0.75
            box(ax, 4.3, yy, 5.4, 0.6, f"'{key}'  →  tensor {shape}", "#fff2cc", size=9)
            arrow(ax, (3.05, y + 0.65), (4.25, yy + 0.3))
    ax.text(5, 0.1, "Saved: the names and the tensors. Not saved: the class, forward(), padding, the optimizer.",
            ha="center", fontsize=9.5, style="italic")
    return fig


def save_load_flow_figure() -> plt.Figure:
    """The first save and load: state_dict -> torch.save -> file -> torch.load -> load_state_dict -> eval()."""
    fig, ax = plt.subplots(figsize=(11, 2.6))
    ax.set(xlim=(0, 12), ylim=(0, 3.2))
    ax.axis("off")
    box(ax, 0.1, 1.0, 1.8, 1.1, "trained\nNet", "#cfe2f3", weight="bold")
    box(ax, 5.0, 1.0, 2.0, 1.1, "net_mnist.pt\n(a zip: pickle +\none entry per tensor)", "#fff2cc", size=8.5)
    box(ax, 10.1, 0.85, 1.8, 1.4, "new Net()\nsame weights\nthen .eval()", "#d9ead3", weight="bold")
    arrow(ax, (1.95, 1.55), (4.95, 1.55), "torch.save(\nmodel.state_dict(), path)", offset=0.12)
    arrow(ax, (7.05, 1.55), (10.05, 1.55), "model.load_state_dict(\ntorch.load(path,\n weights_only=True))",
          offset=0.12)
    ax.text(6.0, 0.35, "The class is not in the file: the code that builds Net must exist where you load.",
            ha="center", fontsize=9.5, style="italic")
    return fig


FORMAT_CHOICES = [  # (what you will do, the format, the calls): the table of docs/CHEATSHEET.md, as a flow
    ("resume training", "a torch.save dict", "model, optimizer, scheduler, epoch, RNG\ntorch.load(weights_only=True)"),
    ("inference in Python,\nwith the model's class", "state_dict (.pt)",
     "torch.save(model.state_dict(), path)\nmodel.load_state_dict(torch.load(...))"),
    ("inference without the\nclass, or from C++", "torch.export (.pt2)",
     "torch.export.save / load\nC++: an AOTInductor package"),
    ("another runtime\nor language", "ONNX (.onnx)",
     "torch.onnx.export(..., dynamo=True)\nonnxruntime.InferenceSession"),
    ("share it with anyone", "safetensors", "safetensors.torch.save_file\n+ SHA256SUMS beside it"),
    ("too big for memory,\nor many processes", "shards + index, DCP",
     "save_torch_state_dict, dcp.save\nmeta device + mmap=True + assign=True"),
    ("load a file someone\nelse made", "audit it first",
     "get_unsafe_globals_in_checkpoint(path)\nnever weights_only=False"),
]


def format_choice_figure() -> plt.Figure:
    """Which format when: what you will do with the file, then the format and the calls."""
    rows = len(FORMAT_CHOICES)
    fig, ax = plt.subplots(figsize=(11.5, 0.8 * rows + 0.4))
    ax.set(xlim=(0, 12.4), ylim=(0.25, 1.25 * rows + 0.25))
    ax.axis("off")
    top = 1.25 * rows - 0.35
    box(ax, 0.05, top / 2 - 0.55, 2.0, 1.1, "What will you\ndo with\nthe file?", "#cfe2f3", size=10, weight="bold")
    for i, (task, fmt, calls) in enumerate(FORMAT_CHOICES):
        y = top - 1.25 * i - 0.5
        box(ax, 3.0, y, 2.6, 0.95, task, "#fff2cc", size=9)
        box(ax, 6.3, y, 2.35, 0.95, fmt, "#d9ead3", size=9, weight="bold")
        ax.text(8.85, y + 0.475, calls, ha="left", va="center", fontsize=8, family="DejaVu Sans Mono")
        arrow(ax, (2.1, top / 2), (2.95, y + 0.475))
        arrow(ax, (5.65, y + 0.475), (6.25, y + 0.475))
    return fig


FIGURES = {"state_dict.png": state_dict_figure, "save_load_flow.png": save_load_flow_figure,
           "format_choice.png": format_choice_figure}


def main(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, draw in FIGURES.items():
        fig = draw()
        fig.savefig(folder / name, **PNG_OPTIONS)
        plt.close(fig)
        print(f"wrote images/{name}" if folder == Path(__file__).parent else f"wrote {name}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent)
