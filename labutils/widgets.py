"""Interactive explorers built with ipywidgets; each also renders without a browser."""
from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch.nn as nn
from IPython.display import display

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


def show_layer(model: nn.Module, key: str) -> dict:
    """Print one state_dict entry's summary and draw its values; return the summary."""
    s = layer_summary(model, key)
    print(f"{s['key']}: shape {s['shape']}, {s['dtype']}, {s['elements']:,} elements\n"
          f"mean {s['mean']:+.4f}   std {s['std']:.4f}   min {s['min']:+.4f}   max {s['max']:+.4f}")
    if s["elements"] > 1:
        fig = weight_picture(model.state_dict()[key], key)
        display(fig)
        plt.close(fig)
    return s


class LayerExplorer:
    """Pick a state_dict entry from a drop-down and see its shape, statistics and a picture of its values."""

    def __init__(self, model: nn.Module, key: str | None = None):
        self.model = model
        keys = list(model.state_dict())
        self.dropdown = widgets.Dropdown(options=keys, value=key or keys[0], description="entry")
        self.output = widgets.Output()
        self.summary: dict = {}
        self.dropdown.observe(lambda change: self.select(change["new"]), names="value")
        self.widget = widgets.VBox([self.dropdown, self.output])
        self.select(self.dropdown.value)

    def select(self, key: str) -> dict:
        """Show the entry `key` (as picking it in the drop-down does) and return its summary."""
        layer_summary(self.model, key)  # a clear KeyError for a name that is not in the state_dict
        if self.dropdown.value != key:
            self.dropdown.value = key  # the observer calls select again
            return self.summary
        self.output.clear_output(wait=True)
        with self.output:
            self.summary = show_layer(self.model, key)
        return self.summary

    def _ipython_display_(self) -> None:
        display(self.widget)
