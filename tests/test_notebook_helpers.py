"""record_metrics, expect_error, the environment report, the layer explorer and the atomic writer."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import torch

import labutils._io
from labutils import Net, environment_report, expect_error, record_metrics
from labutils._io import atomic_write_bytes
from labutils.widgets import LayerExplorer, layer_summary
from listing import names


def test_record_metrics_merges_into_one_json(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_METRICS_DIR", str(tmp_path))
    record_metrics("99_demo", accuracy=torch.tensor(0.5), steps=3)
    record_metrics("99_demo", steps=4, names=["a"])
    assert json.loads((tmp_path / "99_demo.json").read_text()) == {"accuracy": 0.5, "steps": 4, "names": ["a"]}
    with pytest.raises(TypeError, match="record_metrics cannot store object"):
        record_metrics("99_demo", bad=object())


def test_expect_error_prints_the_error(capsys):
    with expect_error(KeyError, ValueError) as caught:
        raise ValueError("bad value\nsecond line")
    assert isinstance(caught.error, ValueError)
    assert capsys.readouterr().out == "ValueError: bad value\n"


def test_expect_error_prints_no_terminal_colour_codes(capsys):
    """torch's weights_only error makes a phrase bold with escape codes: a notebook shows them as noise."""
    with expect_error(ValueError):
        raise ValueError("two options, \x1b[1mdo those steps only if you trust the source\x1b[0m. More")
    assert capsys.readouterr().out == "ValueError: two options, do those steps only if you trust the source. More\n"


def test_expect_error_says_no_when_nothing_fails():
    with pytest.raises(AssertionError, match="expected NameError, but the block ran without error"):
        with expect_error(NameError):
            pass


def test_expect_error_lets_other_errors_through():
    with pytest.raises(TypeError):
        with expect_error(NameError):
            raise TypeError("not the expected one")


def test_environment_report_says_data_verified():
    report = environment_report()
    assert report["MNIST"].startswith("verified")
    assert report["torch"] == torch.__version__


def test_layer_explorer_follows_the_dropdown():
    net = Net()
    explorer = LayerExplorer(net, "conv1.weight")
    assert explorer.summary["shape"] == (6, 1, 5, 5)
    explorer.dropdown.value = "fc2.bias"  # what a click does
    assert explorer.summary["key"] == "fc2.bias" and explorer.summary["shape"] == (84,)
    assert explorer.select("fc1.weight")["elements"] == 48_000
    assert explorer.dropdown.value == "fc1.weight"
    with pytest.raises(KeyError, match="'fc4.weight' is not in this model's state_dict"):
        explorer.select("fc4.weight")
    stats = layer_summary(net, "fc3.bias")
    assert stats["min"] <= stats["mean"] <= stats["max"]


def test_atomic_write_keeps_the_old_file_when_the_write_fails(tmp_path, monkeypatch):
    target = tmp_path / "file.bin"
    atomic_write_bytes(b"old", target)

    def crash(src, dst):
        raise OSError("simulated crash before the rename")

    with monkeypatch.context() as patch, pytest.raises(OSError):
        patch.setattr(labutils._io.os, "replace", crash)
        atomic_write_bytes(b"new", target)
    assert target.read_bytes() == b"old"
    assert names(tmp_path) == ["file.bin"]
    atomic_write_bytes(b"new", target)
    assert target.read_bytes() == b"new"


def test_median_seconds_takes_the_median_and_hides_what_the_action_prints(capsys, monkeypatch):
    from labutils.notebook import median_seconds

    clock = iter([0.0, 1.0, 10.0, 13.0, 20.0, 20.5])  # runs of 1, 3 and 0.5 seconds
    monkeypatch.setattr("labutils.notebook.time.perf_counter", lambda: next(clock))
    assert median_seconds(lambda: print("noise"), repeats=3) == 1.0
    assert capsys.readouterr().out == ""


def test_save_as_from_gpu_names_both_files_when_it_fails(tmp_path):
    from labutils.notebook import save_as_from_gpu

    with pytest.raises(RuntimeError, match=r"could not write .*cuda.pt from .*missing.pt: .*No such file"):
        save_as_from_gpu(tmp_path / "missing.pt", tmp_path / "cuda.pt")


def _counted_script(started: list, says: str = "saved on the CPU with cuda:0 labels"):
    """A stand-in for the script's subprocess.run that records each start, copies the file and says `says` (what
    the real script said here), without starting Python: the tests that use it count the starts."""
    def script(command, **kwargs):
        started.append(command)
        Path(command[-1]).write_bytes(Path(command[-2]).read_bytes())
        return subprocess.CompletedProcess(command, 0, says + "\n", "")
    return script


def test_save_as_from_gpu_makes_a_file_once_per_source_content(tmp_path, monkeypatch):
    from labutils import notebook

    monkeypatch.setattr(notebook, "_MADE_FROM_GPU", {})  # what earlier tests in this process made is not counted
    torch.manual_seed(0)
    torch.save(Net().state_dict(), tmp_path / "first.pt")
    how = notebook.save_as_from_gpu(tmp_path / "first.pt", tmp_path / "gpu1.pt")  # the real script, once
    started = []
    monkeypatch.setattr(notebook.subprocess, "run", _counted_script(started, how))
    (tmp_path / "copy.pt").write_bytes((tmp_path / "first.pt").read_bytes())
    assert notebook.save_as_from_gpu(tmp_path / "copy.pt", tmp_path / "gpu2.pt") == how and not started
    assert (tmp_path / "gpu2.pt").read_bytes() == (tmp_path / "gpu1.pt").read_bytes()
    torch.save(Net().state_dict(), tmp_path / "other.pt")  # other weights: another file, made by the script
    assert notebook.save_as_from_gpu(tmp_path / "other.pt", tmp_path / "gpu3.pt") == how and len(started) == 1
    assert torch.load(tmp_path / "gpu3.pt", map_location="cpu", weights_only=True).keys() == Net().state_dict().keys()


def test_save_as_from_gpu_remembers_no_large_file(tmp_path, monkeypatch):
    from labutils import notebook

    monkeypatch.setattr(notebook, "_MADE_FROM_GPU", {})
    monkeypatch.setattr(notebook, "_REMEMBERED_BYTES", 1000)  # the Net's 250 KB file counts as large here
    torch.save(Net().state_dict(), tmp_path / "net.pt")
    started = []
    monkeypatch.setattr(notebook.subprocess, "run", _counted_script(started))
    for target in ("gpu1.pt", "gpu2.pt"):
        notebook.save_as_from_gpu(tmp_path / "net.pt", tmp_path / target)
    assert len(started) == 2 and notebook._MADE_FROM_GPU == {}
