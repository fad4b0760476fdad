"""labutils: the helpers behind the Save & Load Lab's notebooks.

`labutils.plots` (matplotlib) is imported on first use, so that the scripts and the processes that only save and
load do not pay for it.
"""
import importlib

from . import checkpoint, checks
from .cache import TrainedNet, trained_net
from .data import MEAN, STD, DataError, mnist, mnist_tensors, verify_mnist
from .i18n import set_language
from .models import BatchNormNet, Net, state_dict_table
from .notebook import environment_report, expect_error, median_seconds, record_metrics
from .paths import artifacts_dir, display_path
from .train import TrainConfig, evaluate, fit, pick_device, predict, seed_everything

__all__ = [
    "checkpoint", "checks", "plots",
    "MEAN", "STD", "BatchNormNet", "DataError", "Net", "TrainConfig", "TrainedNet", "artifacts_dir",
    "display_path", "environment_report", "evaluate", "expect_error", "fit", "median_seconds", "mnist", "mnist_tensors",
    "pick_device", "predict", "record_metrics", "seed_everything", "set_language", "state_dict_table", "trained_net",
    "verify_mnist",
]


def __getattr__(name: str):
    if name == "plots":
        return importlib.import_module(".plots", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
