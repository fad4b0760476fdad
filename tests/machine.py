"""The machine a test runs on, named in the failure message of a bound that depends on it (memory, pages, timing)."""
from __future__ import annotations

import os
import platform


def machine() -> str:
    """Name the platform, the CPUs and the Python and torch versions: what differs when such a bound is breached."""
    import torch

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"on {platform.platform()} ({platform.machine()}), {os.cpu_count()} CPUs ({usable} usable), "
            f"Python {platform.python_version()} ({platform.python_implementation()}), torch {torch.__version__}")
