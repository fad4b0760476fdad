"""tools/doctor.py (`make doctor`): each check says yes on this machine, and says no, naming the problem and its fix,
where it must."""
from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import time

import doctor
import lab
import pytest
import torch
from check_python import RANGE

from labutils.paths import REPO_ROOT

LABELS = "t10k-labels-idx1-ubyte"  # the smallest bundled file, checked last


@pytest.fixture(scope="module", autouse=True)
def end_to_end(request):
    """`python tools/doctor.py`, started before the module's first test: a fresh Python that imports torch and
    JupyterLab takes seconds, so it runs while the other tests do; test_doctor_end_to_end reads its report. Not
    started where that test is not selected (`make check` leaves out what trains, and the doctor trains a little)."""
    if not any(item.name == "test_doctor_end_to_end" for item in request.session.items):
        yield None
        return
    start = time.monotonic()
    process = subprocess.Popen([sys.executable, "tools/doctor.py"], cwd=REPO_ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, encoding="utf-8",
                               env={**os.environ, "PYTHONIOENCODING": "utf-8"})  # ✓ and ✗, whatever the locale
    try:
        yield process, start
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


# --- Python ---------------------------------------------------------------------------------------------------------

def test_python_says_yes_with_every_pin_of_requirements_txt():
    pins = doctor.read_pins()
    written = [line.split("==")[0] for line in (REPO_ROOT / "requirements.txt").read_text().splitlines()
               if "==" in line and not line.startswith("#")]
    assert list(pins) == written and doctor.matches(torch.__version__, pins["torch"])
    result = doctor.check_python()
    assert result.status == doctor.OK, result.line()
    assert f"all {len(pins)} pins" in result.found and "labutils from this folder" in result.found


def test_python_says_no_to_a_pin_that_differs_or_is_missing():
    fake = "torch==0.0.1  # a pin this environment does not have\nno-such-package-xyz==1.0\nnumpy==" \
           + doctor.installed_version("numpy") + "\n"
    result = doctor.check_python(requirements=fake)
    assert result.status == doctor.FAIL
    assert f"torch {doctor.installed_version('torch')} (pinned 0.0.1)" in result.found, result.found
    assert "no-such-package-xyz missing (pinned 1.0)" in result.found and "numpy" not in result.found
    assert result.fix.endswith("-m pip install -r requirements.txt (make setup does it for a new .venv)")


def test_python_says_no_to_an_unsupported_version():
    result = doctor.check_python(python_version=(3, 10, 12))
    assert result.status == doctor.FAIL and "3.10.12" in result.found and RANGE in result.found
    assert result.fix.startswith(f"rm -rf {doctor.shown(sys.prefix)}, then make lab PYTHON=")


def test_a_pin_matches_the_same_version_however_written():
    assert doctor.matches("2.14.1+cpu", "2.14.1")  # torch's CPU build (make lab TORCH_INDEX=...)
    assert doctor.matches("1.2", "1.2.0") and doctor.matches("4.5.post3", "4.5.post3")
    assert not doctor.matches("2.14.0", "2.14.1") and not doctor.matches("2.14.1", "2.14.1+cu126")
    assert doctor.read_pins("a==1  # x\nb==2 ; python_version < '3'\n# c==3\n-e .\n") == {"a": "1"}


# --- the kernel -------------------------------------------------------------------------------------------------------

def _kernelspec(folder, python: str, display_name: str):
    (folder / "python3").mkdir(parents=True)
    (folder / "python3" / "kernel.json").write_text(json.dumps({
        "argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": display_name, "language": "python"}))
    return folder


def test_kernel_says_yes_to_the_labs_kernelspec():
    result = doctor.check_kernel()
    assert result.status == doctor.OK, result.line()
    assert lab.KERNEL_DISPLAY_NAME in result.found and doctor.shown(sys.executable) in result.found


def test_kernel_says_no_to_a_kernelspec_of_another_python(tmp_path):
    result = doctor.check_kernel([_kernelspec(tmp_path, "/usr/bin/python3", lab.KERNEL_DISPLAY_NAME)])
    assert result.status == doctor.FAIL and "starts /usr/bin/python3" in result.found, result.line()
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert "$(BIN)/python tools/lab.py --install-kernel" in makefile
    assert result.fix == f"{doctor.shown(sys.executable)} tools/lab.py --install-kernel"


def test_kernel_says_no_to_another_name_or_none_at_all(tmp_path):
    result = doctor.check_kernel([_kernelspec(tmp_path / "named", sys.executable, "Python 3")])
    assert result.status == doctor.FAIL and 'named "Python 3"' in result.found, result.line()
    # no "python3" kernelspec: jupyter_client falls back on ipykernel's own, which is not named after the lab
    result = doctor.check_kernel([tmp_path / "empty"])
    assert result.status == doctor.FAIL and "Python 3 (ipykernel)" in result.found, result.line()


# --- JupyterLab and the widgets extension ---------------------------------------------------------------------------

def test_jupyterlab_says_yes_with_the_widgets_extension():
    result = doctor.check_jupyterlab()
    assert result.status == doctor.OK, result.line()
    assert result.found.startswith(doctor.read_pins()["jupyterlab"]) and "widgets extension" in result.found


def test_jupyterlab_says_no_without_the_extension_at_another_version_or_disabled(tmp_path, monkeypatch):
    result = doctor.check_jupyterlab(labextensions_path=[tmp_path])
    assert result.status == doctor.FAIL and doctor.WIDGETS in result.found and "not in" in result.found
    assert "--force-reinstall --no-deps jupyterlab_widgets==" in result.fix
    result = doctor.check_jupyterlab(version_of=lambda name: "4.0.0")
    assert result.status == doctor.FAIL and "jupyterlab 4.0.0 (pinned" in result.found
    config = tmp_path / "config"
    (config / "labconfig").mkdir(parents=True)
    (config / "labconfig" / "page_config.json").write_text(json.dumps({"disabledExtensions": {doctor.WIDGETS: True}}))
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(config))  # where `jupyter labextension disable` writes
    result = doctor.check_jupyterlab()
    assert result.status == doctor.FAIL and "is disabled" in result.found
    assert result.fix.endswith(f"jupyter labextension enable {doctor.WIDGETS}")


# --- MNIST ----------------------------------------------------------------------------------------------------------

def test_mnist_says_yes_to_the_bundled_data():
    result = doctor.check_mnist()
    assert result.status == doctor.OK, result.line()
    assert "4 bundled .gz in data/ and data/MNIST/raw/" in result.found


def test_mnist_says_no_to_a_damaged_file_and_names_it(data_copy, monkeypatch):
    monkeypatch.setenv("LAB_DATA_DIR", str(data_copy))
    gz = data_copy / f"{LABELS}.gz"
    data = bytearray(gz.read_bytes())
    data[len(data) // 2] ^= 0xFF
    gz.write_bytes(bytes(data))
    result = doctor.check_mnist()
    assert result.status == doctor.FAIL and f"{gz} is damaged" in result.found, result.line()
    assert result.fix == f"copy {gz.name} again from the lab's data/ (git checkout -- data/ there)"
    assert "not checked" not in result.found  # the last file: none after it went unchecked
    assert not (data_copy / "MNIST").exists()  # nothing extracted from damaged data


def test_mnist_says_no_to_a_well_formed_gz_of_other_data(data_copy):
    gz = data_copy / "train-images-idx3-ubyte.gz"
    gz.write_bytes(gzip.compress(b"not MNIST"))
    result = doctor.check_mnist(data_copy)
    assert result.status == doctor.FAIL and f"{gz} is damaged" in result.found, result.line()
    assert "sha256 differs" in result.found and "the files after it were not checked" in result.found


def test_mnist_says_no_to_a_missing_file(data_copy):
    (data_copy / f"{LABELS}.gz").unlink()
    result = doctor.check_mnist(data_copy)
    assert result.status == doctor.FAIL and result.found == f"{data_copy / LABELS}.gz missing", result.line()
    assert result.fix.startswith(f"copy {LABELS}.gz again")


def test_mnist_in_the_lab_says_which_file_git_restores(monkeypatch):
    is_file = doctor.Path.is_file  # the lab's own data/ is left alone: the file only looks missing
    monkeypatch.setattr(doctor.Path, "is_file", lambda path: path.name != f"{LABELS}.gz" and is_file(path))
    result = doctor.check_mnist()
    assert result.found == f"data/{LABELS}.gz missing" and result.fix == f"git checkout -- data/{LABELS}.gz"


def test_paths_are_named_relative_to_the_lab():
    assert doctor.shown(REPO_ROOT / "data" / f"{LABELS}.gz") == f"data/{LABELS}.gz"
    assert doctor.shown("/elsewhere/x.gz") == "/elsewhere/x.gz"


def test_mnist_extracts_as_make_data_does_and_warns_of_a_damaged_extracted_file(data_copy):
    result = doctor.check_mnist(data_copy)
    assert result.status == doctor.OK and "(extracted now)" in result.found, result.line()
    raw = data_copy / "MNIST" / "raw" / LABELS
    intact = raw.read_bytes()
    raw.write_bytes(intact[:-1] + bytes([intact[-1] ^ 0xFF]))
    result = doctor.check_mnist(data_copy)
    assert result.status == doctor.WARN and f"{raw} was damaged" in result.found, result.line()
    assert raw.read_bytes() == intact  # the .gz is intact: the lab extracts it again, as on first use


# --- disk and memory --------------------------------------------------------------------------------------------------

def test_disk_says_yes_here_and_no_below_the_need(artifacts):
    result = doctor.check_disk()
    assert result.status == doctor.OK and f"{artifacts}/" in result.found, result.line()
    assert doctor.check_disk(need=1 << 60).status == doctor.FAIL
    result = doctor.check_disk(free=300 << 20)
    assert result.status == doctor.FAIL and "0.3 GiB free" in result.found and "LAB_ARTIFACTS_DIR" in result.fix


def test_disk_says_no_where_the_artifacts_cannot_be_written(tmp_path, monkeypatch):
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("LAB_ARTIFACTS_DIR", str(tmp_path / "a-file" / "artifacts"))
    result = doctor.check_disk()
    assert result.status == doctor.FAIL and "cannot write artifacts" in result.found, result.line()


def test_memory_says_yes_here_no_below_the_need_and_warns_where_it_cannot_measure():
    assert doctor.MEMORY_NEED == 2 << 30 and doctor.DISK_NEED == 1 << 30  # notebook 08's figures (doctor.py says why)
    assert doctor.check_memory().status == doctor.OK
    assert doctor.check_memory(need=1 << 60).status == doctor.FAIL
    result = doctor.check_memory(available=1 << 30)
    assert result.status == doctor.FAIL and "1.0 GiB available" in result.found and "2.0 GiB" in result.found
    result = doctor.check_memory(available=None)  # macOS: no /proc/meminfo
    assert result.status == doctor.WARN and "not checked" in result.found
    assert doctor.summary([result]).startswith("Ready for the lab")


# --- the round trip ---------------------------------------------------------------------------------------------------

@pytest.mark.executes  # trains a Net for four batches
def test_round_trip_says_yes():
    result = doctor.check_round_trip()
    assert result.status == doctor.OK, result.line()
    assert f"{doctor.ROUND_TRIP_BATCHES} batches" in result.found and "outputs equal" in result.found


@pytest.mark.executes
def test_round_trip_says_no_when_the_loaded_weights_differ():
    from labutils.checkpoint import load_checkpoint

    def nudged(path):
        state = load_checkpoint(path)
        state["model"]["fc3.bias"] = state["model"]["fc3.bias"] + 1e-6
        return state

    def short(path):
        state = load_checkpoint(path)
        del state["model"]["conv1.weight"]
        return state

    for load, key in ((nudged, "fc3.bias"), (short, "conv1.weight")):
        result = doctor.check_round_trip(load=load)
        assert result.status == doctor.FAIL and key in result.found and "tests/test_checkpoint.py" in result.fix


# --- the Chinese edition ----------------------------------------------------------------------------------------------

def test_language_says_yes_for_zh_cn():
    result = doctor.check_language("zh-CN")
    assert result.status == doctor.OK, result.line()
    assert (REPO_ROOT / lab.LANGUAGES["zh-CN"][0]).is_file() and "00_welcome.zh-CN.ipynb" in result.found


def test_language_says_no_without_the_pack_or_the_notebooks(tmp_path):
    pinned = doctor.read_pins()["jupyterlab-language-pack-zh-CN"]
    result = doctor.check_language("zh-CN", version_of=lambda name: None)
    assert result.status == doctor.FAIL, result.line()
    assert result.found == f"jupyterlab-language-pack-zh-CN missing (pinned {pinned})"
    result = doctor.check_language("zh-CN", packs={"en": {}})
    assert result.status == doctor.FAIL and "no zh_CN pack" in result.found
    (tmp_path / "00_a.ipynb").write_text("{}")
    (tmp_path / "01_b.ipynb").write_text("{}")
    (tmp_path / "01_b.zh-CN.ipynb").write_text("{}")
    result = doctor.check_language("zh-CN", notebooks_dir=tmp_path)
    assert result.status == doctor.FAIL and result.found == f"{tmp_path / '00_a.zh-CN.ipynb'} missing"


# --- the report -------------------------------------------------------------------------------------------------------

def test_a_check_that_raises_becomes_its_line_with_a_fix(tmp_path):
    result = doctor.run_check("Broken", lambda: __import__("no_such_module_xyz"))
    assert result.status == doctor.FAIL and "ModuleNotFoundError" in result.found
    assert result.fix.endswith("-m pip install -r requirements.txt")
    # a package that is installed but fails to import (torch without its shared library): install that one again
    broken = compile("raise ImportError('libtorch_cpu.so: cannot open shared object file')",
                     str(tmp_path / "site-packages" / "torch" / "__init__.py"), "exec")
    result = doctor.run_check("Broken", lambda: exec(broken))
    assert result.found == "the check failed: ImportError: libtorch_cpu.so: cannot open shared object file"
    pinned = doctor.read_pins()["torch"]
    assert result.fix == f"{doctor.shown(sys.executable)} -m pip install --force-reinstall --no-deps torch=={pinned}"
    result = doctor.run_check("Broken", lambda: 1 / 0)
    assert result.status == doctor.FAIL and "ZeroDivisionError" in result.found and "report it" in result.fix


def test_exit_status_last_line_and_plain_marks(monkeypatch, capsys):
    results = [doctor.Result("Fine", doctor.OK, "all good"), doctor.Result("Bad", doctor.FAIL, "broken", "mend it")]
    monkeypatch.setattr(doctor, "checks", lambda language: [(r.name, lambda r=r: r) for r in results])
    assert doctor.main([]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["✓ Fine        all good", "✗ Bad         broken; fix: mend it",
                     "NOT READY: 1 problem: Bad. Fix as the lines above say, then run make doctor again."]
    ascii_out = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    assert doctor.marks_for(ascii_out) == doctor.PLAIN_MARKS and doctor.marks_for(sys.stdout) == doctor.MARKS
    assert results[1].line(doctor.PLAIN_MARKS) == "FAIL Bad         broken; fix: mend it"
    results.pop()
    assert doctor.main([]) == 0 and capsys.readouterr().out.splitlines()[-1] == "Ready for the lab: 1 checks passed."


def test_help_and_language_choice(capsys):
    with pytest.raises(SystemExit) as done:
        doctor.main(["--help"])
    assert done.value.code == 0 and "Round trip" in capsys.readouterr().out
    with pytest.raises(SystemExit) as done:
        doctor.main(["--language", "fr"])
    assert done.value.code == 2
    assert [name for name, _ in doctor.checks("zh-CN")][-1] == "zh-CN"


def test_make_doctor_runs_tools_doctor_py():
    dry = subprocess.run(["make", "-n", "--no-print-directory", "doctor", "LAB_LANG=zh-CN"], cwd=REPO_ROOT,
                         capture_output=True, text=True, check=True, timeout=120).stdout
    assert dry.strip().splitlines()[-1].endswith("/bin/python tools/doctor.py --language zh-CN"), dry


@pytest.mark.executes
def test_doctor_end_to_end(end_to_end):
    process, start = end_to_end
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, out + err
    lines = out.splitlines()
    names = [name for name, _ in doctor.checks()]
    assert [line[2:].split("  ")[0].strip() for line in lines[:-1]] == names, out
    assert all(line.startswith("✓ ") for line in lines[:-1]), out
    assert lines[-1] == f"Ready for the lab: {len(names)} checks passed.", out
    print(f"tools/doctor.py: {time.monotonic() - start:.1f} s since it started, alongside the other tests")  # -s
