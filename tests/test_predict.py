"""tools/predict.py: the lab-free predictor gives the model's answers and one-line errors for bad input."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from PIL import Image

from labutils import MEAN, STD, mnist_tensors
from labutils.paths import REPO_ROOT
from labutils.share import HubNet, write_checksums

PREDICT = REPO_ROOT / "tools" / "predict.py"


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """An ONNX file and a model folder of one (untrained, seeded) Net, and five test digits as PNG."""
    folder = tmp_path_factory.mktemp("deploy")
    torch.manual_seed(0)
    model = HubNet().eval()
    images, _ = mnist_tensors(train=False, subset=5)
    program = torch.onnx.export(model, (images[:2].clone(),), dynamo=True, verbose=False,
                                dynamic_shapes={"x": {0: torch.export.Dim("batch")}})
    program.save(str(folder / "bare.onnx"))
    proto = onnx.load(folder / "bare.onnx")
    for key, value in {"mean": MEAN, "std": STD, "image_size": 28}.items():
        proto.metadata_props.add(key=key, value=str(value))
    onnx.save(proto, folder / "net.onnx")
    model.save_pretrained(folder / "model")
    write_checksums(folder / "model")
    pixels = ((images[:, 0] * STD + MEAN).clamp(0, 1) * 255).round().to(torch.uint8)
    paths = []
    for i, image in enumerate(pixels):
        paths.append(folder / f"d{i}.png")
        Image.fromarray(image.numpy(), mode="L").save(paths[-1])
    from_png = torch.from_numpy(np.stack([np.asarray(Image.open(p), dtype=np.float32) / 255 for p in paths]))[:, None]
    with torch.no_grad():
        expected = model((from_png - MEAN) / STD).softmax(1)
    return folder, paths, expected


def _predict(*args, cwd=None, python=(sys.executable, str(PREDICT))):
    """predict.py as a server runs it: a process of its own."""
    return subprocess.run([*python, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def predict_module():
    spec = importlib.util.spec_from_file_location("predict_under_test", PREDICT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def predict_here(predict_module, capsys):
    """predict.py's main() in this process (its input checks: no process start each), with what it printed."""
    def run(*args) -> subprocess.CompletedProcess:
        capsys.readouterr()
        status = predict_module.main([str(arg) for arg in args])
        printed = capsys.readouterr()
        return subprocess.CompletedProcess(["predict.py", *args], status, printed.out, printed.err)

    return run


@pytest.mark.parametrize("model", ["net.onnx", "model"])
def test_answers_match_the_model(deployed, model):
    folder, paths, expected = deployed
    result = _predict(folder / model, *paths)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == len(paths)
    for line, path, row in zip(lines, paths, expected):
        name, answer = line.split(": ")
        digit, probability = answer.rstrip(")").split(" (")
        assert name == str(path) and int(digit) == int(row.argmax())
        assert abs(float(probability) - row.max().item()) < 1e-3


def test_it_runs_without_the_lab(deployed):
    """Another machine has no labutils: the predictor must not need it."""
    folder, paths, _ = deployed
    blocked = ("import runpy, sys; sys.modules['labutils'] = None; sys.argv = ['predict.py'] + sys.argv[1:]; "
               f"runpy.run_path({str(PREDICT)!r}, run_name='__main__')")
    result = _predict(folder / "model", paths[0], python=(sys.executable, "-c", blocked))
    assert result.returncode == 0 and result.stdout.startswith(str(paths[0])), result.stderr


def _one_line_error(result, *expected: str) -> str:
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("predict.py: error: "), result.stderr
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


def test_a_missing_image(deployed, predict_here):
    folder, paths, _ = deployed
    _one_line_error(predict_here(folder / "net.onnx", paths[0], folder / "nowhere.png"),
                    "nowhere.png: no such image file")


def test_a_file_that_is_not_an_image(deployed, predict_here, tmp_path):
    folder, _, _ = deployed
    (tmp_path / "notes.png").write_text("hello")
    _one_line_error(predict_here(folder / "net.onnx", tmp_path / "notes.png"), "notes.png: not an image")


def test_an_image_of_the_wrong_size(deployed, predict_here, tmp_path):
    folder, _, _ = deployed
    Image.new("L", (32, 28)).save(tmp_path / "wide.png")
    _one_line_error(predict_here(folder / "model", tmp_path / "wide.png"), "32×28 pixels", "28×28")


def test_a_model_folder_with_a_wrong_checksum(deployed, predict_here, tmp_path):
    folder, paths, _ = deployed
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(folder / "model", copy)
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**config, "mean": 0.5}))
    _one_line_error(predict_here(copy, paths[0]), "config.json does not match its checksum")
    (copy / "SHA256SUMS").unlink()
    _one_line_error(predict_here(copy, paths[0]), "no SHA256SUMS")


def test_a_missing_or_unknown_model(deployed, predict_here, tmp_path):
    folder, paths, _ = deployed
    _one_line_error(predict_here(tmp_path / "nothing.onnx", paths[0]), "no such model file or folder")
    (tmp_path / "weights.txt").write_text("?")
    _one_line_error(predict_here(tmp_path / "weights.txt", paths[0]), "not a model")
    (tmp_path / "broken.onnx").write_bytes(b"not onnx")
    _one_line_error(predict_here(tmp_path / "broken.onnx", paths[0]), "onnxruntime cannot load it")
    _one_line_error(predict_here(folder / "bare.onnx", paths[0]), "lacks the metadata")


def test_usage(deployed):
    assert _predict().returncode == 2
    help_text = _predict("--help")
    assert help_text.returncode == 0 and "MODEL is either an ONNX file" in help_text.stdout


def test_a_listing_that_leaves_out_a_loaded_file_is_refused(deployed, predict_here, tmp_path):
    folder, paths, _ = deployed
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(folder / "model", copy)
    listing = (copy / "SHA256SUMS").read_text().splitlines(keepends=True)
    for left_out in ("model.safetensors", "config.json"):
        (copy / "SHA256SUMS").write_text("".join(line for line in listing if not line.rstrip().endswith(left_out)))
        _one_line_error(predict_here(copy, paths[0]), f"SHA256SUMS does not list {left_out}")
    # sha256sum -b writes ' *name': the same digests, read by the same parser
    (copy / "SHA256SUMS").write_text("".join(line.replace("  ", " *", 1) for line in listing))
    assert predict_here(copy, paths[0]).returncode == 0


def test_deployed_as_two_files_beside_the_model(deployed, tmp_path):
    """What a server gets: predict.py and sha256sums.py in one folder, and no lab."""
    import shutil

    folder, paths, _ = deployed
    server = tmp_path / "server"
    server.mkdir()
    shutil.copy(PREDICT, server)
    shutil.copy(REPO_ROOT / "labutils" / "sha256sums.py", server)
    blocked = ("import runpy, sys; sys.modules['labutils'] = None; sys.argv = ['predict.py'] + sys.argv[1:]; "
               f"runpy.run_path({str(server / 'predict.py')!r}, run_name='__main__')")
    result = _predict(folder / "model", paths[0], python=(sys.executable, "-c", blocked), cwd=server)
    assert result.returncode == 0 and result.stdout.startswith(str(paths[0])), result.stderr
    (server / "sha256sums.py").unlink()
    result = _predict(folder / "model", paths[0], python=(sys.executable, str(server / "predict.py")))
    assert result.returncode == 1 and "sha256sums.py is missing" in result.stderr


def test_the_predictor_loads_the_bytes_it_verified(deployed, tmp_path, monkeypatch):
    """Verify and load read each file once: a file swapped after the check is never what gets loaded."""
    import shutil

    folder, _, _ = deployed
    copy = tmp_path / "model"
    shutil.copytree(folder / "model", copy)
    spec = importlib.util.spec_from_file_location("predict_under_test", PREDICT)
    predict = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(predict)
    opened = []
    real_open = open

    def counting_open(path, *args, **kwargs):
        opened.append(Path(path).name)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", counting_open)
    model = predict.FolderModel(copy)
    assert opened.count("model.safetensors") == 1 and opened.count("config.json") == 1, opened
    assert model.image_size == 28
