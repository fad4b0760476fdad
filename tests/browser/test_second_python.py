"""The lab opened in JupyterLab on a second Python: no notebook is marked changed, and one only opened keeps its
bytes when saved.

The lab supports Python 3.11, 3.12 and 3.13, and the suite runs on one of them. A notebook opened on any other
Python used to be marked changed (the kernel's `language_info` names its version: tools/lab_server.py). Here
JupyterLab and its kernel run on a second Python, from an environment that holds the lab's JupyterLab pins only
(no torch: nothing is run), which `make second-python SECOND_PYTHON=...` makes. The browser and these tests run in
the suite's own environment.

Runs when LAB_SECOND_PYTHON names that environment's Python: `make test SECOND_PYTHON=/path/to/python3.13` sets it,
and so does `SECOND_PYTHON=auto` (.ci/run) when it finds one. Skipped otherwise, with a line that says which.
"""
from __future__ import annotations

import os
import subprocess
import sys

import lab  # tools/ is on the tests' path (pyproject.toml)
import lab_browser
import pytest

CHROMIUM = lab_browser.find_chromium()
if CHROMIUM is None:
    pytest.skip(f"browser tests: {lab_browser.why_no_chromium()}", allow_module_level=True)
SECOND = os.environ.get("LAB_SECOND_PYTHON")
if not SECOND:
    pytest.skip("no second Python named: `make test SECOND_PYTHON=auto` (or a path) opens the notebooks on one too",
                allow_module_level=True)
if SECOND == "none":  # SECOND_PYTHON=auto found none
    pytest.skip("SECOND_PYTHON=auto found no supported Python here other than the suite's, on the PATH or among "
                "pyenv's versions: install one (pyenv install 3.13, say) to open the notebooks on a second Python",
                allow_module_level=True)

NOTEBOOKS = ["00_welcome.ipynb", "01_define_net.ipynb", "00_welcome.zh-CN.ipynb"]  # 01 holds widgets' state


def version_of(python: str) -> str:
    return subprocess.run([python, "-c", "import platform; print(platform.python_version())"], capture_output=True,
                          text=True, check=True, timeout=60).stdout.strip()


@pytest.fixture(scope="module")
def ui():
    assert os.path.isfile(SECOND), f"LAB_SECOND_PYTHON={SECOND} is not a file: run `make second-python`"
    with lab_browser.lab_session(CHROMIUM, NOTEBOOKS, python=SECOND) as lab:
        yield lab


def test_the_server_and_its_kernel_run_on_the_second_python(ui):
    second, ours = version_of(SECOND), version_of(sys.executable)
    assert second.rsplit(".", 1)[0] != ours.rsplit(".", 1)[0], f"{SECOND} is Python {second}, as the suite's"
    assert ui.server.api("kernelspecs")["kernelspecs"][lab.KERNEL_NAME]["spec"]["argv"][0] == SECOND
    served = ui.server.api("contents/notebooks/00_welcome.ipynb")["content"]["metadata"]["language_info"]
    assert served["version"] == second, "the server shows JupyterLab the language_info of the kernel's Python"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_a_notebook_opened_on_the_second_python_is_unchanged_and_keeps_its_bytes_when_saved(ui, name):
    served = (ui.server.folder / "notebooks" / name).read_bytes()
    ui.open(name)
    assert ui.kernel_name() == lab.KERNEL_DISPLAY_NAME
    assert ui.page.locator(".lm-TabBar-tab.lm-mod-current.jp-mod-dirty").count() == 0, f"opening {name} changed it"
    assert ui.press_save(name) == served, f"{name}, only opened, then saved with Ctrl+S, changed"
