"""Check the Python that `make` will set the lab up with; print what to do and exit 1 when it cannot work.

    python tools/check_python.py ENV_FOLDER     # the Makefile runs this before every `make lab` / `make test`
    python tools/check_python.py --another      # `make test SECOND_PYTHON=auto`: print a second Python's path
    python tools/check_python.py --find         # the Makefile: print the Python it sets the lab up with

ENV_FOLDER is the environment the lab runs in (`.venv`, or the active conda environment). When it already holds
a Python, that Python is checked: it must run and be 3.11, 3.12 or 3.13. Otherwise the Python running this script,
which will create `.venv`, is checked: its version, and the `venv` module with `ensurepip` (Debian and Ubuntu
ship those in a separate package).

`--find` prints the first of python3, then python3.X (the newest first) on the PATH that is a supported version,
or nothing when there is none: the Makefile's PYTHON when none is named.

`--another` prints the newest supported Python on this machine whose version differs from the one running the
script, for the browser tests that open notebooks on a second Python (tests/browser/test_second_python.py), or
nothing, with a line on stderr, when there is none.

On native Windows, in every use, it says to use WSL2 and exits 1: the lab runs on Linux and macOS, and on Windows
inside WSL2 (docs/INSTRUCTOR.md).

Written for any Python 3, so that an old interpreter gets this message instead of a syntax error.
"""
from __future__ import print_function

import glob
import os
import shutil
import subprocess
import sys

# The Python versions the lab supports, written here only: the Makefile finds its Python with this script, and
# tests/test_project.py keeps pyproject.toml's requires-python, environment.yml and the prose of the docs equal to it.
SUPPORTED = ((3, 11), (3, 12), (3, 13))
RANGE = ", ".join("%d.%d" % v for v in SUPPORTED[:-1]) + " or %d.%d" % SUPPORTED[-1]  # "3.11, 3.12 or 3.13"
HOW = ("Install one of them (python.org, pyenv, or your system's packages), then point make at it, for example:\n"
       "    make lab PYTHON=/usr/bin/python3.12      (or: make test PYTHON=...)")
WINDOWS = ("The lab runs on Linux and macOS, not on native Windows: on Windows, run it inside WSL2\n"
           "(docs/INSTRUCTOR.md). In PowerShell, `wsl --install` sets up WSL2 with Ubuntu; in the Ubuntu terminal\n"
           "it opens, clone the lab and run `make lab` there.")


def version_text(info):
    return ".".join(str(part) for part in info)


def check_interpreter():
    """The Python running this script will create the environment: the right version, and venv with ensurepip."""
    found = tuple(sys.version_info[:2])
    if found not in SUPPORTED:
        return ("The lab needs Python {0}; {1} is Python {2}.\n{3}".format(
            RANGE, sys.executable, version_text(sys.version_info[:3]), HOW))
    try:
        import ensurepip  # noqa: F401  (python -m venv needs it to put pip into .venv)
        import venv  # noqa: F401
    except ImportError:
        package = "python{0}-venv".format(version_text(found))
        return ("{0} cannot create a virtual environment: its venv module (with ensurepip) is missing.\n"
                "On Debian or Ubuntu, install it:  sudo apt install {1}\n"
                "then run make again.".format(sys.executable, package))
    return None


def check_environment(folder):
    """An environment that exists already: its Python must run and be a supported version."""
    python = os.path.join(folder, "bin", "python")
    if os.path.lexists(python) and not os.path.exists(python):
        return ("{0} points at a Python that is gone ({1}): it was probably moved, upgraded or removed.\n"
                "Remove the environment (rm -rf {2}) and run make again; make creates it anew.".format(
                    python, os.path.realpath(python), folder))
    if not os.path.exists(python):
        return ("{0}/ exists but holds no Python ({1} is missing): it is not an environment make can use.\n"
                "Remove it (rm -rf {0}) and run make again.".format(folder, python))
    try:
        probe = "import sys, importlib.util; print(*sys.version_info[:3], importlib.util.find_spec('pip') is not None)"
        done = subprocess.run([python, "-c", probe],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as err:
        done, reason = None, str(err)
    if done is None or done.returncode != 0:
        reason = reason if done is None else done.stderr.decode(errors="replace").strip()
        return ("{0} does not run ({1}): the Python it was made from was probably moved, upgraded or removed.\n"
                "Remove it (rm -rf {2}) and run make again; make creates it anew.".format(python, reason, folder))
    parts = done.stdout.split()
    found, has_pip = tuple(int(part) for part in parts[:-1]), parts[-1]
    if found[:2] not in SUPPORTED:
        return ("{0} holds Python {1}, but the lab needs Python {2}.\n"
                "Remove it (rm -rf {0}) and run make again with a supported Python.\n{3}".format(
                    folder, version_text(found), RANGE, HOW))
    if has_pip != b"True":
        return ("{0} has no pip: it was made by a `python -m venv` that failed half-way (on Debian and Ubuntu, "
                "without python{1}-venv).\nInstall that package if it is missing, remove the environment "
                "(rm -rf {0}) and run make again.".format(folder, version_text(found[:2])))
    return None


def version_of(python):
    """(major, minor) of the Python `python`, or None when it does not run (a pyenv shim of a version pyenv has not
    selected, say)."""
    try:
        done = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        major, minor = done.stdout.decode().strip().split(".")
        return (int(major), int(minor)) if done.returncode == 0 else None
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None


def supported_python():
    """The Python make sets the lab up with: python3 when it is a supported version, else the newest supported
    python3.X on the PATH; None when there is none."""
    for name in ["python3"] + ["python{0}.{1}".format(*v) for v in sorted(SUPPORTED, reverse=True)]:
        path = shutil.which(name)
        if path and version_of(path) in SUPPORTED:
            return path
    return None


def another_python():
    """The newest supported Python here whose version is not this one's, or None. Looked for as python3.X on the
    PATH, then among pyenv's versions ($PYENV_ROOT, else ~/.pyenv): its shims run only the versions it selected."""
    pyenv = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    found = []
    for major, minor in sorted(SUPPORTED, reverse=True):
        name = "python{0}.{1}".format(major, minor)
        candidates = [shutil.which(name)] + sorted(glob.glob(os.path.join(pyenv, "versions", "{0}.{1}.*".format(
            major, minor), "bin", name)), reverse=True)
        found += [(major, minor, path) for path in candidates if path]
    for major, minor, path in found:
        if (major, minor) != tuple(sys.version_info[:2]) and version_of(path) == (major, minor):
            return path
    return None


def main(argv):
    if os.name == "nt":
        print(WINDOWS, file=sys.stderr)
        return 1
    if argv[1:] == ["--another"]:
        python = another_python()
        if python is None:
            print("No second Python: none of {0} here but {1}.{2} (the browser tests open the notebooks on that "
                  "one only)".format(RANGE, *sys.version_info[:2]), file=sys.stderr)
        print(python or "")
        return 0
    if argv[1:] == ["--find"]:
        print(supported_python() or "")
        return 0
    if len(argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    folder = argv[1].rstrip("/") or "."
    if os.path.exists(folder) and sys.version_info >= (3, 5):
        problem = check_environment(folder)
    else:  # no environment yet (or a Python too old to look into one): this Python must do
        problem = check_interpreter()
    if problem:
        print(problem, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
