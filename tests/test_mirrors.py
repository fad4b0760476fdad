"""Installing from mirrors (README.md, "Installing from mainland China"): every pip call of `make` takes the PyPI
mirror from PIP_INDEX_URL (the environment), and torch from TORCH_INDEX (an index) or TORCH_FIND_LINKS (a page of
links), both make variables.

Nothing is downloaded. make runs its real rules (`setup`, `wheelhouse`) in a copy of the lab's files, with an
environment whose `python` only records its arguments and its PIP_* variables; pip's own option parser then says
which index and which find-links each call would use, as pip reads them (the configuration files left out). A copy
of the Makefile that drops either one is caught.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest

from labutils.paths import REPO_ROOT

MIRROR = "https://pypi.tuna.tsinghua.edu.cn/simple"
TORCH_INDEX = "https://mirror.nju.edu.cn/pytorch/whl/cpu"
TORCH_LINKS = "https://mirrors.aliyun.com/pytorch-wheels/cpu/"
# what the Makefile reads or runs: the rules' prerequisites and the files its $(shell ...) lines read
FILES = ("Makefile", "requirements.txt", "requirements-tensorflow.txt", "requirements-site.txt", "pyproject.toml",
         "environment.yml",
         "tools/lab.py", "tools/check_python.py")
RECORDER = """#!{python} -S
import json, os, sys
with open({log!r}, "a") as log:
    log.write(json.dumps({{"argv": sys.argv[1:], "env": {{k: v for k, v in os.environ.items() if k[:4] == "PIP_"}}}}))
    log.write("\\n")
"""


def _torch_pins() -> str:
    found = re.findall(r"^(torch(?:vision)?==[^ #]+)", (REPO_ROOT / "requirements.txt").read_text(), re.M)
    assert len(found) == 2, found
    return " ".join(found)


def _cases() -> dict[str, tuple[list[str], list[tuple[str, list[str], str]]]]:
    """make's arguments, and the (index, find-links, what) of each pip call they must make, in order."""
    pins = _torch_pins()
    rest = [(MIRROR, [], "-r requirements.txt"), (MIRROR, [], "-e .")]
    return {
        "torch from an index": (["setup", f"TORCH_INDEX={TORCH_INDEX}"], [(TORCH_INDEX, [], pins), *rest]),
        "torch from a page of links": (["setup", f"TORCH_FIND_LINKS={TORCH_LINKS}"],
                                       [(MIRROR, [TORCH_LINKS], pins), *rest]),
        "a wheelhouse, torch from a page of links": (
            ["wheelhouse", f"TORCH_FIND_LINKS={TORCH_LINKS}"],
            [(MIRROR, [TORCH_LINKS], pins),
             (MIRROR, ["wheelhouse"], "-r requirements.txt -r requirements-tensorflow.txt -r requirements-site.txt")]),
    }


def _lab_copy(folder: Path, makefile: str | None = None) -> Path:
    for name in FILES:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / name, folder / name)
    if makefile is not None:
        (folder / "Makefile").write_text(makefile)
    return folder


def _pip_calls(lab: Path, run: str, arguments: list[str]) -> list[dict]:
    """The pip calls of `make ARGUMENTS` in `lab`, each as {"argv": [...], "env": {PIP_*: ...}}: the environment's
    python (also PYTHON, which makes the wheelhouse) records them and does nothing else."""
    venv, log = lab / f"venv-{run}", lab / f"calls-{run}.jsonl"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text(RECORDER.format(python=sys.executable, log=str(log)))
    python.chmod(0o755)
    # only what the test gives: no PIP_* or make variable of the shell (or of a `make test` above) comes through
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("PIP_", "MAKE", "MFLAGS"))
                   and key not in ("TORCH_INDEX", "TORCH_FIND_LINKS", "OFFLINE", "VENV", "PYTHON", "WHEELHOUSE")}
    done = subprocess.run(["make", "--no-print-directory", *arguments, f"VENV={venv}", f"PYTHON={python}"], cwd=lab,
                          env={**environment, "PIP_INDEX_URL": MIRROR}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return [call for call in calls if call["argv"][:2] == ["-m", "pip"]]


def _pip_reads(call: dict) -> tuple[str, list[str], str]:
    """The index and the find-links pip would use for `call`, and what it installs or downloads."""
    from pip._internal.commands import create_command

    name, *arguments = call["argv"][2:]
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PIP_")}
    with mock.patch.dict(os.environ, {**environment, **call["env"], "PIP_CONFIG_FILE": os.devnull}, clear=True):
        options, positional = create_command(name, isolated="--isolated" in arguments).parse_args(arguments)
    what = [*(f"-r {r}" for r in options.requirements), *(f"-e {e}" for e in getattr(options, "editables", [])),
            *positional]
    index = "(none: --no-index)" if options.no_index else options.index_url
    return index, list(options.find_links), " ".join(what)


def mirror_problems(lab: Path) -> list[str]:
    """What keeps the Makefile in `lab` from handing pip the mirror and torch's source, one line each."""
    problems = []
    for run, (case, (arguments, expected)) in enumerate(_cases().items()):
        got = [_pip_reads(call) for call in _pip_calls(lab, str(run), arguments)]
        if got != expected:
            problems.append(f"{case} (PIP_INDEX_URL={MIRROR} make {' '.join(arguments)}): pip would use "
                            f"{got}, not {expected}")
    return problems


def test_make_hands_pip_the_mirror_and_torchs_own_source(tmp_path):
    assert mirror_problems(_lab_copy(tmp_path)) == []


def _without(text: str, old: str, new: str = "") -> str:
    assert text.count(old) == 1, f"the Makefile no longer holds {old!r}: update this test's copy that drops it"
    return text.replace(old, new)


@pytest.mark.parametrize("dropped, edit", [
    ("PIP_INDEX_URL, unexported", lambda text: text + "unexport PIP_INDEX_URL\n"),
    ("PIP_INDEX_URL, overridden", lambda text: _without(text, "pip install $(PIP_FROM) -r requirements.txt",
                                                        "pip install $(PIP_FROM) -i https://pypi.org/simple "
                                                        "-r requirements.txt")),
    ("PIP_INDEX_URL, ignored", lambda text: _without(text, "pip install $(PIP_FROM) --no-deps",
                                                     "pip install --isolated $(PIP_FROM) --no-deps")),
    ("TORCH_INDEX", lambda text: _without(text, "$(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))")),
    ("TORCH_FIND_LINKS", lambda text: _without(text, "$(if $(TORCH_FIND_LINKS),--find-links $(TORCH_FIND_LINKS))")),
])
def test_a_makefile_that_drops_the_mirror_or_torchs_source_is_found(tmp_path, dropped, edit):
    makefile = edit((REPO_ROOT / "Makefile").read_text())
    problems = mirror_problems(_lab_copy(tmp_path, makefile))
    assert problems, f"a Makefile that drops {dropped} passed"
    said = "\n".join(problems)
    wrong_index = "https://pypi.org/simple" if dropped.startswith("PIP_INDEX_URL") else None
    assert wrong_index is None or wrong_index in said, said
