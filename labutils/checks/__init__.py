"""Checks for the notebooks' exercises: each prints ✓ or ✗ with a hint, returns True or False, never raises.

One module per notebook (nb06_resume_training.py holds ex06_1 to ex06_3, beside notebooks/solutions/ex06_*.py),
around a small core (_core.py: the ✓/✗ wrapper). `labutils.checks.ex06_2` and friends are imported here.
"""
from ._core import passed, waiting_line  # noqa: F401
from .nb00_welcome import *  # noqa: F403
from .nb01_define_net import *  # noqa: F403
from .nb02_train_mnist import *  # noqa: F403
from .nb03_saving import *  # noqa: F403
from .nb04_loading import *  # noqa: F403
from .nb05_partial_loading import *  # noqa: F403
from .nb06_resume_training import *  # noqa: F403
from .nb07_deploy_and_share import *  # noqa: F403
from .nb08_large_models import *  # noqa: F403
from .nb09_troubleshooting_clinic import *  # noqa: F403
from .nb10_language_model import *  # noqa: F403
from .nb11_frameworks import *  # noqa: F403
from .nb12_capstone_project import *  # noqa: F403
