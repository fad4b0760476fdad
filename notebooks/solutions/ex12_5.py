import hashlib
import json
import shutil
from pathlib import Path

import safetensors.torch
import torch

import labutils

CARD = """# BatchNormNet for MNIST digits

A small convolutional network (LeNet with BatchNorm and Dropout) that classifies 28×28 grey images of
handwritten digits into 0–9. Trained on MNIST in the Save & Load Lab's capstone.

## Results
Accuracy on the 10,000 MNIST test images: {accuracy}.

## How to use it
- `model.onnx`: onnxruntime, input `images` of shape (batch, 1, 28, 28), output `logits` (batch, 10).
- `model.safetensors` with `model.py`: `BatchNormNet()` from model.py, then `load_state_dict`; call `eval()`.
- Scale the pixels to [0, 1], then subtract {mean} and divide by {std} (see config.json).
- `sha256sum -c SHA256SUMS` checks that every file arrived intact.

## Limits
Trained only on centred MNIST digits: other images, letters or photographs give confident nonsense.
"""


def export(model, folder: Path, test_acc: float) -> None:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.eval()  # BatchNorm uses its running averages, Dropout keeps everything: the graph of inference
    example = torch.zeros(2, 1, 28, 28)
    program = torch.onnx.export(model, (example,), dynamo=True, input_names=["images"], output_names=["logits"],
                                dynamic_shapes={"x": {0: torch.export.Dim("batch")}}, verbose=False)
    program.save(str(folder / "model.onnx"))
    safetensors.torch.save_file(model.state_dict(), folder / "model.safetensors")
    shutil.copyfile(labutils.models.__file__, folder / "model.py")  # the class, for those who load the weights
    config = {"architecture": "BatchNormNet", "num_classes": 10, "dropout": model.dropout.p, "image_size": 28,
              "mean": labutils.MEAN, "std": labutils.STD, "test_acc": test_acc}
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    (folder / "README.md").write_text(CARD.format(accuracy=f"{test_acc:.2%}", mean=labutils.MEAN, std=labutils.STD))
    lines = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}\n"
             for p in sorted(folder.iterdir()) if p.is_file() and p.name != "SHA256SUMS"]
    (folder / "SHA256SUMS").write_text("".join(lines))
