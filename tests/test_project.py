"""The project's own files: pins, README, the CI entry point and the figures."""
from __future__ import annotations

import os
import re
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from matplotlib.image import imread
from PIL import Image

from labutils.paths import REPO_ROOT
from notebook_files import NOTEBOOKS

README = (REPO_ROOT / "README.md").read_text()


def _requirements(name: str = "requirements.txt") -> dict[str, str]:
    pins = {}
    for line in (REPO_ROOT / name).read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        spec, sep, comment = line.partition("#")
        assert sep and comment.strip(), f"{name}: every pin needs a comment saying what needs it: {line!r}"
        name, eq, version = spec.strip().partition("==")
        assert eq and re.fullmatch(r"[0-9][0-9a-z.]*", version), f"{name}: pin exactly with ==: {line!r}"
        pins[name.lower()] = version
    return pins


def _supported() -> tuple[tuple[tuple[int, int], ...], str]:
    """tools/check_python.py's SUPPORTED and RANGE: the one place the lab's Python versions are written."""
    found = runpy.run_path(str(REPO_ROOT / "tools" / "check_python.py"))
    return found["SUPPORTED"], found["RANGE"]


def _environment_problems(environment: dict, folder: Path) -> list[str]:
    """What keeps an environment.yml in `folder` from taking its versions from requirements.txt: versions of its own,
    a pip section that is not `-r requirements.txt` then `-e .`, or a Python the lab does not support."""
    supported, _ = _supported()
    dependencies = environment.get("dependencies") or []
    problems = []
    pythons = [d for d in dependencies if isinstance(d, str) and re.fullmatch(r"python=\d+\.\d+(\.\d+)?", d)]
    if len(pythons) != 1 or tuple(int(n) for n in pythons[0][7:].split(".")[:2]) not in supported:
        problems.append(f"python: {pythons}, not one of {supported} (tools/check_python.py)")
    pinned = [d for d in dependencies if isinstance(d, str) and re.search(r"[=<>]", d) and d not in pythons]
    if pinned:
        problems.append(f"versions of its own: {pinned}; requirements.txt is where they are written")
    pip = [d["pip"] for d in dependencies if isinstance(d, dict) and "pip" in d]
    if pip != [["-r requirements.txt", "-e ."]]:
        problems.append(f"pip installs {pip}, not [['-r requirements.txt', '-e .']]")
    if not (folder / "requirements.txt").is_file():  # conda runs pip in the environment file's folder
        problems.append(f"no requirements.txt beside it in {folder}")
    return problems


def test_environment_yml_installs_requirements_txt_and_labutils_on_a_supported_python(tmp_path):
    environment = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    assert not _environment_problems(environment, REPO_ROOT)
    assert environment["name"] == "save-load-lab"  # the Makefile reads it (CONDA_ENV_NAME)
    pinned_again = {"dependencies": ["python=3.10", "pip", "numpy=2.4.6", {"pip": ["torch==2.14.1", "-e ."]}]}
    said = "\n".join(_environment_problems(pinned_again, tmp_path))
    for problem in ("python: ['python=3.10']", "versions of its own: ['numpy=2.4.6']", "pip installs [['torch==2.14.1'",
                    "no requirements.txt beside it"):
        assert problem in said, said


def test_required_pins():
    pins = _requirements()
    for name in ("torch", "torchvision", "jupyterlab", "ipywidgets", "matplotlib", "nbval", "papermill", "pytest",
                 "tqdm", "setuptools"):
        assert name in pins, f"{name} must be pinned in requirements.txt"


def _make_dry_run(*args: str, **env: str) -> str:
    """What `make -n ARGS` would run (nothing runs), with extra environment variables."""
    return subprocess.run(["make", "-n", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=True,
                          timeout=120, env={**os.environ, **env}).stdout


def test_requirements_txt_is_the_only_place_versions_are_written():
    """The Makefile reads torch's and torchvision's pins from requirements.txt; nothing else writes a version."""
    pins = _requirements()
    torch_pins = f"torch=={pins['torch']} torchvision=={pins['torchvision']}"
    dry = _make_dry_run("-W", "requirements.txt", "setup", "TORCH_INDEX=https://download.pytorch.org/whl/cpu")
    assert f"pip install --index-url https://download.pytorch.org/whl/cpu {torch_pins}" in dry, dry
    wheels = _make_dry_run("wheelhouse", "TORCH_INDEX=https://download.pytorch.org/whl/cpu")
    assert f"--index-url https://download.pytorch.org/whl/cpu {torch_pins}" in wheels, wheels
    for name in ("Makefile", "pyproject.toml", ".ci/run", "environment.yml"):
        text = (REPO_ROOT / name).read_text()
        assert not re.search(r"[A-Za-z0-9_-]==[0-9]", text), f"{name} writes a version; only requirements.txt may"


@pytest.mark.parametrize("extra, names, target", [
    ("requirements-tensorflow.txt", ["tensorflow-cpu"], "tensorflow"),
    ("requirements-site.txt", ["sphinx", "myst-nb", "myst-parser", "sphinx-book-theme", "pydata-sphinx-theme", "jieba"],
     "site"),
])
def test_the_extras_are_pinned_apart_and_make_test_installs_them_and_make_lab_does_not(extra, names, target):
    """requirements-tensorflow.txt pins the one optional extra of the notebooks (07's TensorFlow section), and
    requirements-site.txt the website's tools (`make site`), exactly and apart from requirements.txt; `make test`
    installs both, so that the suite runs that section and builds the site; `make lab` and `make setup` do not."""
    pins = _requirements(extra)
    assert list(pins) == names and not set(pins) & set(_requirements()), pins
    installs_extra = f"pip install  -r {extra}"
    for needs_it in ("test", target):
        assert installs_extra in _make_dry_run("-W", extra, needs_it), needs_it
    for target in ("lab", "setup"):
        assert extra not in _make_dry_run("-W", "requirements.txt", target), target
    assert "-r requirements.txt -r requirements-tensorflow.txt -r requirements-site.txt" in " ".join(
        _make_dry_run("wheelhouse").replace("\\\n", " ").split())


def test_the_supported_pythons_are_written_once_in_the_python_check():
    """tools/check_python.py's SUPPORTED: pyproject.toml's requires-python and the prose that names the versions
    (README, the instructor guide, the Makefile) say the same."""
    import tomllib

    supported, range_text = _supported()
    minors = [minor for _, minor in supported]
    assert {major for major, _ in supported} == {3} and minors == list(range(minors[0], minors[-1] + 1)), supported
    requires = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires == f">=3.{minors[0]},<3.{minors[-1] + 1}", f"pyproject.toml: {requires}; supported: {supported}"
    looked_for = ", ".join(["python3"] + [f"python3.{minor}" for minor in reversed(minors)])
    for name in ("README.md", "docs/INSTRUCTOR.md", "Makefile"):
        text = (REPO_ROOT / name).read_text()
        said = re.findall(r"3\.\d+(?:, 3\.\d+)* or 3\.\d+", text)
        assert said and set(said) == {range_text}, f"{name} names Python {said}; tools/check_python.py: {range_text}"
        if name != "docs/INSTRUCTOR.md":
            assert looked_for in text.replace("`", ""), f"{name} must say make looks for {looked_for}"


def test_make_takes_its_python_from_the_python_check(tmp_path):
    """Without PYTHON=..., make asks tools/check_python.py --find: python3 when it is supported, else the newest
    supported python3.X that runs, else plain python3 (which the check then refuses)."""
    folder = Path(_only(tmp_path, "sed"))
    python3 = folder / "python3"

    def python3_says(version: str) -> None:  # runs the check as any Python 3 does; answers the version probe so
        python3.write_text(f'#!/bin/sh\ncase "$1" in -c) echo {version};; *) exec "{sys.executable}" "$@";; esac\n')
        python3.chmod(0o755)

    def found() -> str:
        env = {key: value for key, value in os.environ.items() if key != "PYTHON"} | {"PATH": str(folder)}
        done = subprocess.run([shutil.which("make"), "-s", "--eval", "print: ; $(info $(PYTHON))", "print"],
                              cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, env=env)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    supported, _ = _supported()
    newest, older = (f"{major}.{minor}" for major, minor in sorted(supported, reverse=True)[:2])
    _fake_python(folder / f"python{newest}", newest, runs=False)  # a pyenv shim of a version it has not selected
    _fake_python(folder / f"python{older}", older)
    python3_says("3.10")
    assert found() == str(folder / f"python{older}"), "python3 is 3.10: the newest supported one that runs"
    python3_says(older)
    assert found() == str(python3), "python3 first, when it is supported"
    python3_says("3.10")
    (folder / f"python{older}").unlink()
    assert found() == "python3", "none supported: plain python3, which the check refuses with what to do"


def test_pyproject_depends_on_every_package_labutils_imports():
    """`pip install .` alone must give labutils what it imports (huggingface_hub for labutils.share, ...)."""
    import ast
    import tomllib
    from importlib.metadata import packages_distributions

    declared = {re.split(r"[<>=!~ \[]", spec)[0].lower().replace("_", "-") for spec in
                tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}
    distributions = packages_distributions()
    imported = set()
    for path in (REPO_ROOT / "labutils").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = {name for name in imported if name not in sys.stdlib_module_names and name != "labutils"}
    assert {"torch", "huggingface_hub", "safetensors"} <= third_party, "the scan sees the imports"
    needed = {name: {d.lower().replace("_", "-") for d in distributions[name]} for name in third_party}
    missing = {name: dists for name, dists in needed.items() if not dists & declared}
    assert not missing, f"pyproject.toml's dependencies lack what labutils imports: {missing}"


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


def test_ci_installs_chromium_when_missing_then_runs_make_test():
    """CI runs what a newcomer runs, `make test`, last, with a second Python for the browser tests that open notebooks
    (SECOND_PYTHON=auto); before it only Debian's chromium, when none is found, so that the browser tests run in CI
    (tools/lab_browser.py looks for the same names)."""
    import lab_browser

    text = (REPO_ROOT / ".ci" / "run").read_text()
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    assert lines[-1] == "make test SECOND_PYTHON=auto", lines
    skipped = ("set ", "cd ", "if ", "&&", "else", "echo ")
    commands = [line for line in lines[:-1] if line != "fi" and not line.startswith(skipped)]
    install = "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium"
    assert commands == ["apt-get update -qq", install], commands
    # only root can install; anyone else goes on to make test, which says why it skips the browser tests
    assert 'if [ "$(id -u)" = 0 ]; then' in text and "tests/browser will be skipped" in text
    for name in (*lab_browser.BROWSERS, "CHROMIUM"):
        assert name in text, f".ci/run must look for {name} before installing a Chromium"


def _drawn_with(path: Path) -> str | None:
    """The font a Chinese figure says it was drawn with (make_images.py writes it into the PNG)."""
    with Image.open(path) as image:
        return image.info.get("Font")


def test_images_are_what_the_script_draws(tmp_path):
    """Every figure, in English and in Chinese (NAME.zh-CN.png), is what images/make_images.py draws. Without a CJK
    font the script draws the English ones only and says what to install; a Chinese figure drawn with another font
    (or another version of it) than the committed one can differ in its pixels, so then only its size is compared."""
    done = subprocess.run([sys.executable, str(REPO_ROOT / "images" / "make_images.py"), str(tmp_path)], check=True,
                          capture_output=True, text=True, timeout=300)
    drawn = sorted(p.name for p in tmp_path.glob("*.png"))
    committed = sorted(p.name for p in (REPO_ROOT / "images").glob("*.png"))
    english = [name for name in committed if not name.endswith(".zh-CN.png")]
    assert sorted(set(committed) - set(english)) == [name.replace(".png", ".zh-CN.png") for name in english], \
        "every figure has its Chinese one, and no other: run `make images` and commit the result"
    if any(name.endswith(".zh-CN.png") for name in drawn):
        assert drawn == committed, "run `make images` and commit the result"
    else:
        assert drawn == english, "run `make images` and commit the result"
        assert "sudo apt-get install fonts-noto-cjk" in done.stderr, "no CJK font: the script must say what to install"
    for name in drawn:
        new, old = imread(tmp_path / name), imread(REPO_ROOT / "images" / name)
        if _drawn_with(tmp_path / name) != _drawn_with(REPO_ROOT / "images" / name):
            assert new.shape == old.shape, f"images/{name} is out of date: run `make images` and commit it"
            continue
        assert np.array_equal(new, old), f"images/{name} is out of date: run `make images` and commit it"


def test_without_a_cjk_font_the_script_draws_english_says_what_to_install_and_keeps_the_chinese(tmp_path, monkeypatch,
                                                                                              capsys):
    import labutils.plots

    monkeypatch.setattr(labutils.plots, "cjk_font", lambda: None)
    script = runpy.run_path(str(REPO_ROOT / "images" / "make_images.py"), run_name="make_images")
    kept = tmp_path / "state_dict.zh-CN.png"
    kept.write_bytes(b"the Chinese figure drawn before")
    script["main"](tmp_path)
    assert sorted(p.name for p in tmp_path.glob("*.png")) == sorted([*script["FIGURES"], kept.name])
    assert kept.read_bytes() == b"the Chinese figure drawn before"
    told = capsys.readouterr().err
    assert told == script["NO_CJK_FONT"] + "\n" and "font-ttf-noto-cjk" in told and "make images" in told
    # with a font, the Chinese figures say in Chinese what the English ones say
    words = script["Words"]("zh-CN", "DejaVu Sans")
    assert words("resume training") == "断点续训" and words("torch.save(model.state_dict(), path)").startswith("torch")
    assert script["Words"]()("resume training") == "resume training"


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
    notebooks = [p.name[:2] for p in NOTEBOOKS]
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


CHECK_PYTHON = REPO_ROOT / "tools" / "check_python.py"


def _check_python(*args: str, python: str = sys.executable, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([python, str(CHECK_PYTHON), *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})


def _fake_environment(folder, version: str, pip: bool = True):
    """An environment whose bin/python says it is Python `version` (a shell script: no such Python is needed)."""
    (folder / "bin").mkdir(parents=True)
    python = folder / "bin" / "python"
    python.write_text(f"#!/bin/sh\necho {version.replace('.', ' ')} {pip}\n")
    python.chmod(0o755)
    return folder


def _fake_python(path, version: str, runs: bool = True):
    """An executable at `path` that answers the version probe as Python `version`, or fails as a pyenv shim of a
    version pyenv has not selected does."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho {version}\n" if runs else "#!/bin/sh\necho 'pyenv: not selected' >&2\nexit 127\n")
    path.chmod(0o755)
    return path


def test_another_python_is_the_newest_supported_one_that_runs_and_is_not_this_one(tmp_path):
    """`make test SECOND_PYTHON=auto` (.ci/run): python3.X on the PATH, then pyenv's versions, whose shims fail."""
    ours = sys.version_info[:2]
    others = sorted((v for v in [(3, 11), (3, 12), (3, 13)] if v != ours), reverse=True)
    newest, older = (f"{major}.{minor}" for major, minor in others)
    path, pyenv = tmp_path / "bin", tmp_path / "pyenv"
    _fake_python(path / f"python{newest}", newest, runs=False)  # a shim
    _fake_python(path / f"python{older}", older)
    _fake_python(path / f"python{ours[0]}.{ours[1]}", f"{ours[0]}.{ours[1]}")
    real = _fake_python(pyenv / "versions" / f"{newest}.0" / "bin" / f"python{newest}", newest)
    _fake_python(pyenv / "versions" / "3.10.13" / "bin" / "python3.10", "3.10")
    done = _check_python("--another", PATH=str(path), PYENV_ROOT=str(pyenv))
    assert done.returncode == 0 and done.stdout.strip() == str(real), done.stdout + done.stderr
    real.unlink()
    done = _check_python("--another", PATH=str(path), PYENV_ROOT=str(pyenv))
    assert done.stdout.strip() == str(path / f"python{older}"), "the older one, when the newest does not run"


def _only(tmp_path, *commands: str) -> str:
    """A PATH that holds only `commands` (links to this machine's), for make's recipes and $(shell ...)."""
    folder = tmp_path / "path"
    folder.mkdir(exist_ok=True)
    for command in commands:
        (folder / command).symlink_to(shutil.which(command))
    return str(folder)


def test_make_test_with_second_python_auto_names_the_newest_other_python_or_none(tmp_path):
    """`make test SECOND_PYTHON=auto` (.ci/run) hands the second environment's Python to the suite, quoted (a
    folder with a space works), or `none` when there is no other Python, which the test says as it skips."""
    ours = f"{sys.version_info[0]}.{sys.version_info[1]}"
    other = max(v for v in ("3.11", "3.12", "3.13") if v != ours)
    path, make = _only(tmp_path, "sed"), shutil.which("make")

    def dry_run() -> str:
        return subprocess.run([make, "-n", "test", "SECOND_PYTHON=auto", f"PYTHON={sys.executable}"], cwd=REPO_ROOT,
                              capture_output=True,
                              text=True, check=True, timeout=120,
                              env={**os.environ, "PATH": path, "PYENV_ROOT": str(tmp_path / "no-pyenv")}).stdout

    _fake_python(Path(path) / f"python{other}", other)
    assert f'LAB_SECOND_PYTHON="{REPO_ROOT}/.venv-second/bin/python" ' in dry_run()
    (Path(path) / f"python{other}").unlink()
    _fake_python(Path(path) / f"python{ours}", ours)
    dry = dry_run()
    assert "LAB_SECOND_PYTHON=none " in dry and ".venv-second" not in dry, dry
    assert "LAB_SECOND_PYTHON" not in _make_dry_run("test"), "without SECOND_PYTHON, nothing of it"


def test_make_refuses_a_second_python_of_the_suites_version(tmp_path):
    done = subprocess.run(["make", "second-python", f"SECOND_PYTHON={sys.executable}", f"SECOND_VENV={tmp_path}/v"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "as .venv is: name another version" in done.stdout, done.stdout + done.stderr
    assert not (tmp_path / "v").exists()


def test_another_python_is_none_where_there_is_only_this_one(tmp_path):
    _fake_python(tmp_path / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}",
                 f"{sys.version_info[0]}.{sys.version_info[1]}")
    done = _check_python("--another", PATH=str(tmp_path / "bin"), PYENV_ROOT=str(tmp_path / "none"))
    assert done.returncode == 0 and done.stdout.strip() == "", done.stdout
    assert "No second Python" in done.stderr


def test_the_python_check_accepts_this_python_and_a_good_environment(tmp_path):
    assert _check_python(str(tmp_path / "new-venv")).returncode == 0, "this Python may create .venv"
    for version in ("3.11.7", "3.12.1", "3.13.0"):
        done = _check_python(str(_fake_environment(tmp_path / version, version)))
        assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("version", ["3.10.13", "3.14.0"])
def test_the_python_check_refuses_an_environment_of_another_version(tmp_path, version):
    done = _check_python(str(_fake_environment(tmp_path / "env", version)))
    assert done.returncode == 1
    assert f"holds Python {version}, but the lab needs Python 3.11, 3.12 or 3.13" in done.stderr
    assert f"rm -rf {tmp_path / 'env'}" in done.stderr and "make lab PYTHON=" in done.stderr


def test_the_python_check_names_a_broken_or_empty_environment(tmp_path):
    (tmp_path / "gone" / "bin").mkdir(parents=True)
    (tmp_path / "gone" / "bin" / "python").symlink_to(tmp_path / "removed-python")
    done = _check_python(str(tmp_path / "gone"))
    assert done.returncode == 1 and "points at a Python that is gone" in done.stderr, done.stderr
    (tmp_path / "empty").mkdir()
    done = _check_python(str(tmp_path / "empty"))
    assert done.returncode == 1 and "holds no Python" in done.stderr and "rm -rf" in done.stderr


def test_the_python_check_refuses_another_version_by_name(tmp_path):
    """The check runs under the Python make found; one outside 3.11-3.13 is named with the way out."""
    code = (f"import runpy, sys; sys.version_info = (3, 10, 13); sys.argv = ['check', {str(tmp_path / 'new')!r}]; "
            f"runpy.run_path({str(CHECK_PYTHON)!r}, run_name='__main__')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert f"The lab needs Python 3.11, 3.12 or 3.13; {sys.executable} is Python 3.10.13" in done.stderr
    assert "make lab PYTHON=" in done.stderr


def test_the_python_check_sends_native_windows_to_wsl2(tmp_path):
    """The lab runs on Linux and macOS, and on Windows inside WSL2 (docs/INSTRUCTOR.md): native Windows is told so."""
    env = _fake_environment(tmp_path / "env", "3.12.1")  # a good environment: only the system is wrong
    for args in ([str(env)], [str(tmp_path / "new")], ["--another"], ["--find"]):
        code = ("import glob, os, runpy, shutil, subprocess, sys; os.name = 'nt'; "  # imported first: as on Linux
                f"sys.argv = ['check', *{args!r}]; runpy.run_path({str(CHECK_PYTHON)!r}, run_name='__main__')")
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert done.returncode == 1 and done.stdout == "", (args, done.stdout, done.stderr)
        assert "not on native Windows" in done.stderr and "WSL2" in done.stderr and "wsl --install" in done.stderr
    done = _check_python(str(env))
    assert done.returncode == 0 and done.stderr == "", "elsewhere the same environment passes"


def test_the_python_check_names_the_venv_package_when_ensurepip_is_missing(tmp_path):
    """Debian and Ubuntu ship venv's ensurepip in python3.X-venv; without it `python -m venv` fails."""
    (tmp_path / "shadow" / "ensurepip").mkdir(parents=True)
    (tmp_path / "shadow" / "ensurepip" / "__init__.py").write_text("raise ImportError('no ensurepip here')\n")
    done = _check_python(str(tmp_path / "new"), PYTHONPATH=str(tmp_path / "shadow"))
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert done.returncode == 1 and f"sudo apt install python{version}-venv" in done.stderr, done.stderr


def test_the_python_check_names_an_environment_left_without_pip(tmp_path):
    """A `python -m venv` that failed half-way (Debian without python3.X-venv) leaves a Python without pip."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "half")], check=True, timeout=120)
    done = _check_python(str(tmp_path / "half"))
    assert done.returncode == 1 and "has no pip" in done.stderr and f"rm -rf {tmp_path / 'half'}" in done.stderr
    assert _check_python(str(_fake_environment(tmp_path / "fake", "3.12.1", pip=False))).returncode == 1


def test_make_checks_the_python_before_it_installs(tmp_path):
    """`make setup` with an environment of the wrong version stops at the check: no venv, no pip."""
    env = _fake_environment(tmp_path / "env", "3.10.13")
    done = subprocess.run(["make", "setup", f"VENV={env}"], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode != 0 and "holds Python 3.10.13" in done.stderr, done.stdout + done.stderr
    assert "pip install" not in done.stdout and "-m venv" not in done.stdout
    missing = subprocess.run(["make", "setup", "PYTHON=/nowhere/python3", f"VENV={tmp_path / 'new'}"], cwd=REPO_ROOT,
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode != 0 and "/nowhere/python3 is not on PATH" in missing.stdout, missing.stdout


def test_make_uses_the_labs_conda_environment_instead_of_a_venv(tmp_path):
    """Inside `conda activate save-load-lab` make runs the lab there; inside any other environment, in .venv."""
    prefix = tmp_path / "envs" / "save-load-lab"
    inside = _make_dry_run("-W", "requirements.txt", "test", CONDA_PREFIX=str(prefix),
                           CONDA_DEFAULT_ENV="save-load-lab")
    assert f"{prefix}/bin/python -m pytest" in inside and f"{prefix}/bin/python -m pip install" in inside, inside
    assert ".venv" not in inside
    other = _make_dry_run("test", CONDA_PREFIX=str(tmp_path / "envs" / "ml"), CONDA_DEFAULT_ENV="ml")
    assert ".venv/bin/python -m pytest" in other and "envs/ml" not in other, other
    named = _make_dry_run("test", f"VENV={prefix}")
    assert f"{prefix}/bin/python -m pytest" in named


def test_make_check_leaves_out_what_runs_a_notebook_trains_or_drives_a_browser():
    """`make check` is pytest -m "not executes": the notebooks' items, a file that trains throughout and a test that
    runs a session of notebooks are left out; the quick tests of the same files stay."""
    dry = _make_dry_run("check")
    assert '-m "not executes"' in dry.strip().splitlines()[-1], dry
    files = ["notebooks/00_welcome.ipynb", "tests/test_capstone.py", "tests/test_isolation.py",
             "tests/test_notebook_claims.py", "tests/test_checkpoint.py"]
    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:xdist", "-m",
                           "not executes", *files], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    kept = {tuple(line.split("[")[0].split("::")[:2]) for line in done.stdout.splitlines() if "::" in line}
    files_kept, names_kept = {file for file, _ in kept}, {name for _, name in kept}
    assert not files_kept & {"notebooks/00_welcome.ipynb", "tests/test_capstone.py"}, files_kept
    heavy = {"test_tests_and_notebooks_save_to_the_temporary_folder_and_leave_the_learners_files_alone",
             "test_nbval_compares_the_checked_outputs"}
    quick = {"test_the_chains_go_first_then_02_the_slow_files_the_notebooks_and_the_short_files",
             "test_each_claim_fails_when_the_run_breaks_it",
             "test_a_full_checkpoint_round_trips_exactly_with_its_metadata"}
    assert not heavy & names_kept and quick <= names_kept, sorted(kept)
