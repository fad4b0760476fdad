"""Interactive explorers built with ipywidgets; each also renders without a browser.

Why no `ipywidgets.Output` here: an Output widget captures what the kernel prints, and a headless client
(nbclient, so papermill, nbconvert and `make notebooks`) imitates one by sending every captured output
back to the kernel on the shell channel. jupyter_client sends it through a blocking copy of the asyncio
socket (`Session.send` shadows `zmq.asyncio.Socket`), and libzmq's send swallows the "message arrived"
signal of an execute_reply that is already waiting on that socket. zmq.asyncio only watches that
edge-triggered signal, so the client never sees the reply: the cell's kernel is idle while the client waits
until its timeout fires, or forever without one (jupyter/nbclient#312; the race needs the reply to arrive
while the client is still handling the cell's last outputs, which CPU contention makes likely).
The widgets below set their state in the kernel (an `HTML` text and an `Image` in PNG), which only sends
messages from the kernel to the client, so no client ever has to answer them.
"""
from __future__ import annotations

import html
import io

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch.nn as nn
from IPython.display import display

from .i18n import N_, translate
from .plots import weight_picture


def layer_summary(model: nn.Module, key: str) -> dict:
    """Return the shape, element count and statistics of one state_dict entry."""
    state = model.state_dict()
    if key not in state:
        raise KeyError(f"{key!r} is not in this model's state_dict; its keys are: {', '.join(state)}")
    t = state[key].detach().float()
    return {"key": key, "shape": tuple(state[key].shape), "dtype": str(state[key].dtype), "elements": t.numel(),
            "mean": t.mean().item(), "std": t.std().item() if t.numel() > 1 else 0.0,
            "min": t.min().item(), "max": t.max().item()}


def summary_text(s: dict) -> str:
    """Return the two lines that describe one state_dict entry's summary."""
    return (f"{s['key']}: shape {s['shape']}, {s['dtype']}, {s['elements']:,} elements\n"
            f"mean {s['mean']:+.4f}   std {s['std']:.4f}   min {s['min']:+.4f}   max {s['max']:+.4f}")


def show_layer(model: nn.Module, key: str) -> dict:
    """Print one state_dict entry's summary and draw its values; return the summary."""
    s = layer_summary(model, key)
    print(summary_text(s))
    if s["elements"] > 1:
        fig = weight_picture(model.state_dict()[key], key)
        display(fig)
        plt.close(fig)
    return s


def figure_png(fig: plt.Figure) -> bytes:
    """Return a figure as PNG bytes (as the notebook would draw it) and close it."""
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", bbox_inches="tight")
    finally:
        plt.close(fig)
    return buffer.getvalue()


class LayerExplorer:
    """Pick a state_dict entry from a drop-down and see its shape, statistics and a picture of its values."""

    def __init__(self, model: nn.Module, key: str | None = None):
        self.model = model
        keys = list(model.state_dict())
        self.dropdown = widgets.Dropdown(options=keys, value=key or keys[0], description=translate(N_("entry")))
        self.text = widgets.HTML()
        self.picture = widgets.Image(format="png", layout=widgets.Layout(max_width="100%"))
        self.summary: dict = {}
        self.dropdown.observe(lambda change: self.select(change["new"]), names="value")
        self.widget = widgets.VBox([self.dropdown, self.text, self.picture])
        self.select(self.dropdown.value)

    def select(self, key: str) -> dict:
        """Show the entry `key` (as picking it in the drop-down does) and return its summary."""
        summary = layer_summary(self.model, key)  # a clear KeyError for a name that is not in the state_dict
        if self.dropdown.value != key:
            self.dropdown.value = key  # the observer calls select again
            return self.summary
        self.summary = summary
        self.text.value = f"<pre>{html.escape(summary_text(summary))}</pre>"
        has_picture = summary["elements"] > 1
        self.picture.value = figure_png(weight_picture(self.model.state_dict()[key], key)) if has_picture else b""
        self.picture.layout.display = None if has_picture else "none"
        return summary

    def _ipython_display_(self) -> None:
        display(self.widget)


class LayerPicker:
    """Tick which pretrained layers to load and which to freeze; a button fine-tunes and adds a bar to a chart.

    `fine_tune(load, freeze)` does the work and returns the accuracy. Each preset runs when the picker is
    built, so the chart is there without a click (as in a headless run); clicks add more bars.
    """

    def __init__(self, layers: list[str], fine_tune, *, presets: list[tuple[list[str], list[str]]] = (),
                 load: list[str] = (), freeze: list[str] = ()):
        self.layers = list(layers)
        self.fine_tune = fine_tune
        self.results: list[dict] = []
        self.load_boxes = {name: widgets.Checkbox(value=name in load, description=name, indent=False)
                           for name in self.layers}
        self.freeze_boxes = {name: widgets.Checkbox(value=name in freeze, description=name, indent=False)
                             for name in self.layers}
        self.button = widgets.Button(description=translate(N_("Fine-tune and add a bar")), button_style="primary",
                                     layout=widgets.Layout(width="220px"))
        self.picture = widgets.Image(format="png", layout=widgets.Layout(max_width="100%", display="none"))
        self.button.on_click(lambda _: self.run())
        headings = [f"<b>{html.escape(translate(text))}</b>" for text in (N_("load from the checkpoint"),
                                                                           N_("freeze (do not train)"))]
        columns = widgets.HBox([
            widgets.VBox([widgets.HTML(headings[0]), *self.load_boxes.values()]),
            widgets.VBox([widgets.HTML(headings[1]), *self.freeze_boxes.values()]),
        ])
        self.widget = widgets.VBox([columns, self.button, self.picture])
        for preset_load, preset_freeze in presets:
            self.run(preset_load, preset_freeze)

    def run(self, load: list[str] | None = None, freeze: list[str] | None = None) -> float:
        """Fine-tune with the layers given (or ticked), record the accuracy as a new bar, and return it."""
        load = [n for n, box in self.load_boxes.items() if box.value] if load is None else list(load)
        freeze = [n for n, box in self.freeze_boxes.items() if box.value] if freeze is None else list(freeze)
        unknown = sorted(set(load + freeze) - set(self.layers))
        if unknown:
            raise ValueError(f"unknown layer(s) {', '.join(unknown)}; the picker offers {', '.join(self.layers)}")
        self.button.disabled = True
        try:
            accuracy = float(self.fine_tune(load, freeze))
        finally:
            self.button.disabled = False
        self.results.append({"label": self.label(load, freeze), "load": load, "freeze": freeze, "accuracy": accuracy})
        self.picture.value = figure_png(self.chart())
        self.picture.layout.display = None
        return accuracy

    @staticmethod
    def label(load: list[str], freeze: list[str]) -> str:
        """Name a run: what was loaded and what was frozen."""
        text = "load " + "+".join(load) if load else "from scratch"
        return text + ("\nfreeze " + "+".join(freeze) if freeze else "")

    @staticmethod
    def short_label(label: str, per_line: int = 2) -> str:
        """A bar's label as the chart writes it: at most `per_line` layer names per line."""
        lines = []
        for line in label.split("\n"):
            verb, _, names = line.partition(" ")
            parts = names.split("+") if "+" in names else [names]
            chunks = ["+".join(parts[i:i + per_line]) for i in range(0, len(parts), per_line)]
            lines += [f"{verb} {chunks[0]}", *("+" + chunk for chunk in chunks[1:])]
        return "\n".join(lines)

    def chart(self) -> plt.Figure:
        """Draw one bar per run so far: its accuracy, labelled by what was loaded and frozen. The figure grows
        with the labels, so that they never overlap, however many bars there are."""
        fig, ax = plt.subplots(figsize=(max(5.0, 1.6 * len(self.results) + 1), 3.4))
        accuracies = [r["accuracy"] for r in self.results]
        bars = ax.bar(range(len(accuracies)), accuracies, color="#4c72b0")
        ax.bar_label(bars, labels=[f"{a:.1%}" for a in accuracies], fontsize=9)
        ax.set_xticks(range(len(accuracies)), [self.short_label(r["label"]) for r in self.results], fontsize=8)
        low = min(accuracies, default=0.5)
        ax.set_ylim(max(0.0, low - 0.1), 1.0)
        ax.set_ylabel("test accuracy")
        fig.tight_layout()
        if accuracies:
            renderer = fig.canvas.get_renderer()
            widest = max(label.get_window_extent(renderer).width for label in ax.get_xticklabels())
            slot = ax.get_window_extent(renderer).width / len(accuracies)  # pixels from one bar's centre to the next
            if widest * 1.15 > slot:
                fig.set_figwidth(fig.get_figwidth() + (widest * 1.15 - slot) * len(accuracies) / fig.dpi)
                fig.tight_layout()
        return fig

    def _ipython_display_(self) -> None:
        display(self.widget)
