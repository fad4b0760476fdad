"""Start JupyterLab the lab's way: `make lab` runs this, and the browser tests and `make screenshots` start the same.

    python tools/lab.py [--no-browser] [--language zh-CN] [JUPYTER LAB OPTIONS ...]
    python tools/lab.py --list-notebooks     # the lab's notebooks, in teaching order (`make notebooks` runs them)

What it adds to a plain `jupyter lab`:
- it serves the lab's folder, so that the notebooks' pictures (`../images/`) and links (`../docs/`) work, with the
  file browser in `notebooks/`, and it opens on notebook 00 (`LabApp.default_url`), not on an empty launcher;
- the lab's JupyterLab settings (`tools/jupyterlab/overrides.json`: no "Jupyter news" prompt, no news feed or
  update check fetched) apply to this lab only, not to the learner's home folder;
- the kernel is the lab's Python, shown as such: `make` installs a "python3" kernelspec into the environment
  ("Save & Load Lab (Python 3)", `install_kernel` below; the notebooks' metadata gives the same name, so that
  opening one does not mark it as changed), and `JUPYTER_PREFER_ENV_PATH` makes it win over a
  "python3" kernelspec the learner may have in their home folder that starts another Python;
- opening a notebook changes nothing, on any Python the lab supports: JupyterLab runs in `tools/lab_server.py`,
  whose contents manager shows each notebook with the running kernel's `language_info` and saves it without the
  Python version (that module says why);
- no browser where there is no display (it prints the URL to open), and `--allow-root` for root;
- `--language zh-CN` (`make lab LAB_LANG=zh-CN`): the Chinese edition, opened on `00_welcome.zh-CN.ipynb`, with
  JupyterLab's own menus in Chinese (`jupyterlab/zh-CN/overrides.json` sets the locale that the pinned
  jupyterlab-language-pack-zh-CN provides).
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _lab_paths():
    """labutils/paths.py, loaded as a file of its own: `import labutils.paths` would run labutils/__init__, which
    imports torch (seconds before JupyterLab starts), and the second Python's environment has no labutils or torch."""
    spec = importlib.util.spec_from_file_location("_lab_paths", ROOT / "labutils" / "paths.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


notebooks = _lab_paths().notebooks  # the lab's English notebooks in teaching order: the one list, in labutils/paths.py
SETTINGS = ROOT / "tools" / "jupyterlab"
SERVER = ROOT / "tools" / "lab_server.py"  # JupyterLab with the lab's contents manager
FIRST_NOTEBOOK = "notebooks/00_welcome.ipynb"
LANGUAGES = {"en": (FIRST_NOTEBOOK, SETTINGS), "zh-CN": ("notebooks/00_welcome.zh-CN.ipynb", SETTINGS / "zh-CN")}
SERVER_HIDDEN = ["__pycache__", "*.pyc", "*.pyo", ".DS_Store", "*~"]  # jupyter_server's own hide_globs, kept


def hidden(language: str) -> list[str]:
    """The names the file browser of `language`'s edition leaves out: the other edition's notebooks, by their exact
    names, so that a notebook of the learner's own (a copy, "01_define_net.zh-CN-Copy1.ipynb") is never hidden. A
    link or a URL still opens them."""
    english = [path.name for path in notebooks(ROOT / "notebooks")]
    return english if language == "zh-CN" else [name.replace(".ipynb", ".zh-CN.ipynb") for name in english]


def hidden_args(language: str) -> list[str]:
    """The server options that hide the other edition's notebooks from the file browser of `language`'s (one lab
    per language: 13 notebooks, not 26 interleaved)."""
    return [f"--ContentsManager.hide_globs={pattern}" for pattern in SERVER_HIDDEN + hidden(language)]


KERNEL_NAME = "python3"  # the name the notebooks' metadata gives: a learner is never asked to pick a kernel
KERNEL_DISPLAY_NAME = "Save & Load Lab (Python 3)"  # the notebooks' metadata gives it too (tests/test_lab_launch.py)


def install_kernel(prefix: str = sys.prefix) -> Path:
    """Install this Python's kernelspec as "python3" into the environment `prefix`, named after the lab."""
    from ipykernel.kernelspec import install

    return Path(install(kernel_name=KERNEL_NAME, display_name=KERNEL_DISPLAY_NAME, prefix=prefix))


def environment(base: dict | None = None) -> dict:
    """The environment JupyterLab runs with: the environment's kernelspecs before the learner's own."""
    env = dict(os.environ if base is None else base)
    env["JUPYTER_PREFER_ENV_PATH"] = "1"
    return env


def command(root: Path, *, open_browser: bool, extra: list[str] = (), language: str = "en",
            python: str = sys.executable) -> list[str]:
    """The `jupyter lab` command line for the lab in the folder `root`, run by `python` (this environment's)."""
    first, settings = LANGUAGES[language]
    args = [python, str(SERVER), "--ServerApp.contents_manager_class=lab_server.LabContentsManager",
            f"--ServerApp.root_dir={root}",
            "--FileContentsManager.preferred_dir=notebooks", f"--LabApp.default_url=/lab/tree/{first}",
            f"--LabApp.app_settings_dir={settings}", *hidden_args(language)]
    if not open_browser:
        args.append("--no-browser")
    if hasattr(os, "getuid") and os.getuid() == 0:
        args.append("--allow-root")
    return args + list(extra)


def has_display() -> bool:
    """Whether a browser can open here: always on macOS and Windows, on Linux only with X11 or Wayland."""
    if not sys.platform.startswith("linux"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-browser", action="store_true", help="print the URL instead of opening a browser")
    parser.add_argument("--install-kernel", action="store_true",
                        help="only install the lab's kernelspec into this environment (make does it at set-up)")
    parser.add_argument("--language", choices=sorted(LANGUAGES), default="en",
                        help="zh-CN: the Chinese notebooks, and JupyterLab's menus in Chinese")
    parser.add_argument("--list-notebooks", action="store_true",
                        help="only print the lab's notebooks, one a line, in teaching order (make notebooks runs them)")
    args, extra = parser.parse_known_args(argv)
    if args.list_notebooks:
        print("\n".join(path.relative_to(ROOT).as_posix() for path in notebooks()))
        return
    if args.install_kernel:
        print(f"kernel {KERNEL_NAME!r} ({KERNEL_DISPLAY_NAME}) installed in {install_kernel()}")
        return
    argv_ = command(ROOT, open_browser=has_display() and not args.no_browser, extra=extra, language=args.language)
    os.execve(sys.executable, argv_, environment())


if __name__ == "__main__":
    main()
