"""Start JupyterLab the lab's way: `make lab` runs this, and the browser tests and `make screenshots` start the same.

    python tools/lab.py [--no-browser] [--language zh-CN] [JUPYTER LAB OPTIONS ...]

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
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = ROOT / "tools" / "jupyterlab"
SERVER = ROOT / "tools" / "lab_server.py"  # JupyterLab with the lab's contents manager
FIRST_NOTEBOOK = "notebooks/00_welcome.ipynb"
LANGUAGES = {"en": (FIRST_NOTEBOOK, SETTINGS), "zh-CN": ("notebooks/00_welcome.zh-CN.ipynb", SETTINGS / "zh-CN")}
NOTEBOOK_NAME = re.compile(r"\d\d_\w+\.ipynb")  # 03_saving.ipynb; not its Chinese edition, 03_saving.zh-CN.ipynb
KERNEL_NAME = "python3"  # the name the notebooks' metadata gives: a learner is never asked to pick a kernel
KERNEL_DISPLAY_NAME = "Save & Load Lab (Python 3)"  # the notebooks' metadata gives it too (tests/test_lab_launch.py)


def notebooks(folder: Path = ROOT / "notebooks") -> list[Path]:
    """The lab's numbered notebooks in `folder`, in teaching order: NN_name.ipynb, not their Chinese editions."""
    return sorted(p for p in Path(folder).glob("[0-9][0-9]_*.ipynb") if NOTEBOOK_NAME.fullmatch(p.name))


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
            f"--LabApp.app_settings_dir={settings}"]
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
    args, extra = parser.parse_known_args(argv)
    if args.install_kernel:
        print(f"kernel {KERNEL_NAME!r} ({KERNEL_DISPLAY_NAME}) installed in {install_kernel()}")
        return
    argv_ = command(ROOT, open_browser=has_display() and not args.no_browser, extra=extra, language=args.language)
    os.execve(sys.executable, argv_, environment())


if __name__ == "__main__":
    main()
