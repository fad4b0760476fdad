"""The project's own files: pins, README, the CI entry point and the figures."""
from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
from matplotlib.image import imread

from labutils.paths import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()


def _requirements() -> dict[str, str]:
    pins = {}
    for line in (REPO_ROOT / "requirements.txt").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        spec, sep, comment = line.partition("#")
        assert sep and comment.strip(), f"requirements.txt: every pin needs a comment saying what needs it: {line!r}"
        name, eq, version = spec.strip().partition("==")
        assert eq and re.fullmatch(r"[0-9][0-9a-z.]*", version), f"requirements.txt: pin exactly with ==: {line!r}"
        pins[name.lower()] = version
    return pins


def _environment_pins() -> dict[str, str]:
    text = (REPO_ROOT / "environment.yml").read_text()
    assert re.search(r"^\s*- python=3\.11\s*$", text, re.M), "environment.yml must ask for python=3.11"
    pins = {}
    for name, version in re.findall(r"^\s+- ([A-Za-z0-9_.\-]+)==(\S+)\s*$", text, re.M):
        pins[name.lower()] = version
    return pins


def test_requirements_and_environment_agree():
    assert _requirements() == _environment_pins()


def test_required_pins():
    pins = _requirements()
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"
    for name in ("jupyterlab", "ipywidgets", "matplotlib", "nbval", "papermill", "pytest", "tqdm"):
        assert name in pins, f"{name} must be pinned in requirements.txt"


def test_installed_versions_match_the_pins():
    from importlib.metadata import version

    for name, pinned in _requirements().items():
        installed = version(name).split("+")[0]
        assert installed == pinned, f"{name}: installed {installed}, pinned {pinned}; run `make setup` again"


def test_readme_starts_with_the_two_commands():
    first_block = re.search(r"```(?:bash|sh)?\n(.*?)```", README, re.S).group(1)
    assert [line.split("#")[0].strip() for line in first_block.strip().splitlines()] == ["make lab", "make test"]
    for alternative in ("conda env create -f environment.yml", "TORCH_INDEX=https://download.pytorch.org/whl/cpu"):
        assert alternative in README


def test_ci_runs_make_test_and_nothing_else():
    lines = [line.strip() for line in (REPO_ROOT / ".ci" / "run").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert [line for line in lines if not line.startswith(("set ", "cd "))] == ["make test"]


def test_images_are_what_the_script_draws(tmp_path):
    subprocess.run([sys.executable, str(REPO_ROOT / "images" / "make_images.py"), str(tmp_path)], check=True,
                   capture_output=True, timeout=300)
    drawn = sorted(p.name for p in tmp_path.glob("*.png"))
    committed = sorted(p.name for p in (REPO_ROOT / "images").glob("*.png"))
    assert drawn == committed, "run `make images` and commit the result"
    for name in drawn:
        new, old = imread(tmp_path / name), imread(REPO_ROOT / "images" / name)
        assert np.array_equal(new, old), f"images/{name} is out of date: run `make images` and commit it"


@pytest.mark.parametrize("target", ["lab", "test"])
def test_make_sets_up_before_it_runs(target):
    """`make lab` and `make test` create .venv first; a second run installs nothing (make -n shows no pip)."""
    dry = subprocess.run(["make", "-n", target], cwd=REPO_ROOT, capture_output=True, text=True, check=True,
                         timeout=120).stdout
    assert "pip install" not in dry, f"`make {target}` would install again although .venv is set up:\n{dry}"
    assert "labutils" in dry  # the data check runs every time


def test_offline_installs_use_only_the_wheelhouse():
    """`make lab OFFLINE=1` installs every package from wheelhouse/ and never from an index."""
    dry = subprocess.run(["make", "-n", "-W", "requirements.txt", "lab", "OFFLINE=1",
                          "TORCH_INDEX=https://download.pytorch.org/whl/cpu"],
                         cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=120).stdout
    installs = [line for line in dry.splitlines() if "pip install" in line]
    assert len(installs) == 2 and all("--no-index --find-links wheelhouse" in line for line in installs), dry
    assert "--index-url" not in dry
    online = subprocess.run(["make", "-n", "wheelhouse"], cwd=REPO_ROOT, capture_output=True, text=True,
                            check=True, timeout=120).stdout
    assert "pip download --dest wheelhouse --find-links wheelhouse -r requirements.txt" in online


def test_offline_without_a_wheelhouse_stops_before_installing(tmp_path):
    done = subprocess.run(["make", "-W", "requirements.txt", "setup", "OFFLINE=1", f"WHEELHOUSE={tmp_path / 'none'}"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert f"OFFLINE=1 installs from {tmp_path / 'none'}/ but it is missing: run make wheelhouse" in done.stdout
    assert "pip install" not in done.stdout


def test_the_instructor_guide_times_every_notebook():
    guide = (REPO_ROOT / "docs" / "INSTRUCTOR.md").read_text()
    timed = re.findall(r"^\| (\d\d) [^|]+ \| \d+ s", guide, re.M)
    notebooks = sorted(p.name[:2] for p in (REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert timed == notebooks, "docs/INSTRUCTOR.md: one measured row per notebook, in order"


def _ruff(*args: str, cwd=REPO_ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def test_ruff_finds_nothing_in_the_lab():
    """labutils, tests, tools, benchmarks, images and the notebooks, with pyproject.toml's rules."""
    result = _ruff(".")
    assert result.returncode == 0, result.stdout + result.stderr
    checked = _ruff(".", "--show-files").stdout
    for part in ("labutils/checkpoint.py", "tests/test_project.py", "tools/predict.py", "benchmarks/checkpoint_io.py",
                 "images/make_images.py", "notebooks/06_resume_training.ipynb"):
        assert part in checked, f"ruff does not look at {part}"


def test_ruff_says_no_to_a_missing_comma_and_a_long_line(tmp_path):
    (tmp_path / "pyproject.toml").write_text((REPO_ROOT / "pyproject.toml").read_text())
    (tmp_path / "table.py").write_text('HINTS = [\n    "first entry"\n    "second entry",\n]\n')
    (tmp_path / "long.py").write_text(f"X = {'1 + ' * 40}1\n")
    result = _ruff(".", cwd=tmp_path)
    assert result.returncode == 1
    assert "ISC004" in result.stdout and "table.py" in result.stdout, result.stdout
    assert "E501" in result.stdout and "long.py" in result.stdout, result.stdout


def test_every_subpackage_of_labutils_is_packaged():
    """A regular (not editable) install must carry labutils.checks too."""
    import fnmatch
    import tomllib

    patterns = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    packages = [".".join(p.parent.relative_to(REPO_ROOT).parts) for p in (REPO_ROOT / "labutils").rglob("__init__.py")]
    assert "labutils.checks" in packages
    for package in packages:
        assert any(fnmatch.fnmatch(package, pattern) for pattern in patterns["include"]), package
