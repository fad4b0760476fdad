"""Classify PNG images of handwritten digits with a model exported by the Save & Load Lab (notebook 07).

    python tools/predict.py MODEL IMAGE.png [IMAGE.png ...]

MODEL is either an ONNX file (needs onnxruntime, numpy and pillow) or a model folder holding
model.safetensors, config.json and SHA256SUMS (needs torch, safetensors, numpy and pillow). Images must be
28×28 grayscale, a white digit on black as in MNIST. Prints one line per image: the file, the digit and its
probability. This script does not import the lab's package, as on a machine that only has the model: to deploy
it, copy it with labutils/sha256sums.py (the checksum format, standard library only) into one folder.
"""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np

USAGE = "usage: predict.py MODEL IMAGE.png [IMAGE.png ...]"


class PredictError(Exception):
    """A problem with the input, reported as one line and exit status 1."""


def main(argv: list[str]) -> int:
    if argv[:1] in (["-h"], ["--help"]):
        print(__doc__.strip())
        return 0
    if len(argv) < 2:
        print(USAGE, file=sys.stderr)
        return 2
    try:
        model = load_model(Path(argv[0]))
        images = np.stack([read_image(Path(name), model.image_size) for name in argv[1:]])
        probabilities = model.probabilities((images - model.mean) / model.std)
    except PredictError as err:
        print(f"predict.py: error: {err}", file=sys.stderr)
        return 1
    for name, row in zip(argv[1:], probabilities):
        print(f"{name}: {int(row.argmax())} ({row.max():.4f})")
    return 0


def read_image(path: Path, size: int) -> np.ndarray:
    """Return a 1×size×size float image in [0, 1]; refuse what is not a grayscale PNG of that size."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise PredictError(f"{path}: no such image file")
    try:
        with Image.open(path) as image:
            image.load()
    except (UnidentifiedImageError, OSError) as err:
        raise PredictError(f"{path}: not an image ({err.__class__.__name__}); give a PNG of a digit") from None
    if image.size != (size, size):
        raise PredictError(f"{path}: the image is {image.size[0]}×{image.size[1]} pixels; the model takes "
                           f"{size}×{size} (resize it first)")
    return (np.asarray(image.convert("L"), dtype=np.float32) / 255.0)[None]


class OnnxModel:
    """An ONNX file run by onnxruntime; the normalisation comes from the file's metadata."""

    def __init__(self, path: Path):
        import onnxruntime

        try:
            self.session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own exception types
            raise PredictError(f"{path}: onnxruntime cannot load it ({str(err).splitlines()[0][:120]})") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        try:
            self.mean, self.std, self.image_size = float(meta["mean"]), float(meta["std"]), int(meta["image_size"])
        except KeyError as err:
            raise PredictError(f"{path}: the ONNX file lacks the metadata {err}; export it as notebook 07 does") \
                from None
        self.input = self.session.get_inputs()[0].name

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        logits = self.session.run(None, {self.input: images.astype(np.float32)})[0]
        return _softmax(logits)


class FolderModel:
    """A model folder: config.json and model.safetensors read once each, and used only if their checksums match."""

    def __init__(self, folder: Path):
        files = read_verified_folder(folder, ("config.json", "model.safetensors"))
        config = json.loads(files["config.json"])
        self.mean, self.std, self.image_size = config["mean"], config["std"], config["image_size"]
        import torch
        from safetensors.torch import load

        self.torch = torch
        self.net = _lenet(torch, config["num_classes"])
        self.net.load_state_dict(load(files["model.safetensors"]))
        self.net.eval()

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        with self.torch.no_grad():
            logits = self.net(self.torch.from_numpy(images.astype(np.float32)))
        return _softmax(logits.numpy())


def _sha256sums():
    """Load the lab's sha256sum parser from the file beside this script, or from the lab's folder."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "sha256sums.py", here.parent / "labutils" / "sha256sums.py"):
        if candidate.is_file():
            spec = importlib.util.spec_from_file_location("predict_sha256sums", candidate)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
    raise PredictError(f"sha256sums.py is missing: copy labutils/sha256sums.py into {here}")


def read_verified_folder(folder: Path, needed: tuple[str, ...]) -> dict[str, bytes]:
    """Return the bytes of the `needed` files, each read once and checked against SHA256SUMS before use.

    Refuses a folder without SHA256SUMS, one whose SHA256SUMS leaves out a needed file, and a changed file.
    """
    sums = _sha256sums()
    listing = folder / "SHA256SUMS"
    if not listing.is_file():
        raise PredictError(f"{folder}: no SHA256SUMS in the model folder, so its files cannot be verified")
    try:
        digests = {name: digest for digest, name in sums.parse(listing.read_text())}
    except (sums.FormatError, UnicodeDecodeError) as err:
        raise PredictError(f"{listing}: not a sha256sum listing ({err})") from None
    files = {}
    for name in needed:
        if name not in digests:
            raise PredictError(f"{folder}: SHA256SUMS does not list {name}, so it cannot be verified")
        if not (folder / name).is_file():
            raise PredictError(f"{folder}: {name} is listed in SHA256SUMS but missing")
        try:
            files[name] = sums.read_verified(folder / name, digests[name])
        except ValueError:
            raise PredictError(f"{folder}: {name} does not match its checksum in SHA256SUMS (damaged or changed)") \
                from None
    return files


def load_model(path: Path):
    if path.is_dir():
        return FolderModel(path)
    if path.suffix == ".onnx" and path.is_file():
        return OnnxModel(path)
    if not path.exists():
        raise PredictError(f"{path}: no such model file or folder")
    raise PredictError(f"{path}: not a model; give an .onnx file or a model folder")


def _lenet(torch, num_classes: int):
    """The lab's Net (LeNet-5 with conv1 padded by 2), defined here so that this script stands alone."""
    nn, F = torch.nn, torch.nn.functional

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
            self.conv2 = nn.Conv2d(6, 16, 5)
            self.fc1 = nn.Linear(16 * 5 * 5, 120)
            self.fc2 = nn.Linear(120, 84)
            self.fc3 = nn.Linear(84, num_classes)

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.conv1(x)), 2)
            x = F.max_pool2d(F.relu(self.conv2(x)), 2)
            x = torch.flatten(x, 1)
            return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))

    return Net()


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
