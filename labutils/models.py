"""The lab's models: the Net of the article the lab follows, fixed for MNIST, and a BatchNorm + Dropout variant."""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn as nn
import torch.nn.functional as F

if TYPE_CHECKING:
    import pandas as pd


class Net(nn.Module):
    """The LeNet of the article the lab follows, fixed for 28×28 MNIST by padding conv1 by 2 (as LeNet-5 did)."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)  # the fix: 28×28 in, 28×28 out, like a 32×32 input unpadded
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), (2, 2))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class BatchNormNet(nn.Module):
    """Net with BatchNorm after each convolution and Dropout before fc2: it has buffers and needs eval()."""

    def __init__(self, num_classes: int = 10, dropout: float = 0.25):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.bn1 = nn.BatchNorm2d(6)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.bn2 = nn.BatchNorm2d(16)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        x = torch.flatten(x, 1)
        x = self.dropout(F.relu(self.fc1(x)))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def state_dict_table(model: nn.Module) -> pd.DataFrame:
    """Return one row per state_dict entry: name, parameter or buffer, shape, dtype, elements, bytes."""
    import pandas as pd

    params = {name for name, _ in model.named_parameters()}
    rows = [
        {
            "key": key,
            "kind": "parameter" if key in params else "buffer",
            "shape": tuple(t.shape),
            "dtype": str(t.dtype).removeprefix("torch."),
            "elements": t.numel(),
            "bytes": t.numel() * t.element_size(),
        }
        for key, t in model.state_dict().items()
    ]
    return pd.DataFrame(rows).set_index("key")
