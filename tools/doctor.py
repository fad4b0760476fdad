"""Is this machine ready for the Save & Load Lab? One line per check, with the fix for each problem.

    python tools/doctor.py [--language zh-CN]     # `make doctor` (LAB_LANG=zh-CN adds the Chinese edition's check)

Python      a supported version (tools/check_python.py), every pin of requirements.txt installed at its version,
            labutils installed from this folder
Kernel      the "python3" kernelspec JupyterLab starts is the lab's: this Python, named as tools/lab.py names it
JupyterLab  jupyterlab at its pin, and ipywidgets' extension among the extensions JupyterLab loads, not disabled
MNIST       the four bundled data/*.gz decompress to the canonical files (labutils.verify_mnist, in a scratch
            folder), and data/MNIST/raw is extracted and intact (verify_mnist again, as `make data` runs it)
Disk        free space where the artifacts go (LAB_ARTIFACTS_DIR, else artifacts/), for notebook 08
Memory      available memory (MemAvailable, or a container's limit), for notebook 08
Round trip  a Net trained on a few batches, saved with save_checkpoint and loaded with load_checkpoint: the same
            weights and the same outputs
zh-CN       (--language zh-CN) the pinned language pack, listed by JupyterLab, and every NN_name.zh-CN.ipynb

Exits 0 when the machine is ready (warnings allowed), 1 when a check fails; the last line names the problems.
Only the standard library is imported up here: each check imports what it needs (torch, jupyter_client, ...), so
that a broken install shows as that check's line, not as a traceback. The only thing written in the lab is
data/MNIST/raw when it is missing or damaged, exactly as `make data` and the notebooks' first use would do it.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import importlib.util
import io
import os
import re
import shutil
import sys
import tempfile
import time
import traceback
from unittest import mock
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# tools/ is on the path: as a script, and in the tests through pyproject.toml's pythonpath
import lab  # tools/lab.py: the kernel's name, the lab's environment, its notebooks and languages
from check_python import RANGE, SUPPORTED  # the Python versions the lab supports, written there only

ROOT = lab.ROOT
REQUIREMENTS = ROOT / "requirements.txt"
WIDGETS = "@jupyter-widgets/jupyterlab-manager"  # ipywidgets' JupyterLab extension (from jupyterlab_widgets)

GiB = 1 << 30
# Notebook 08 (notebooks/08_large_models.ipynb) needs the most. Its "You will need" says section 2 "needs about 2 GiB
# of free memory"; the cell after its parameters keeps 1 GiB + 2.5x the model free (RSS_MEGABYTES = 256 MiB: the
# naive load holds two copies), 1.6 GiB, and measures a smaller model when there is less.
MEMORY_NEED = 2 * GiB
# On disk that cell wants 3x the model free (768 MiB: a .pt and a .safetensors of 256 MiB, deleted again), and a full
# run of 08 leaves about 0.7 GiB in artifacts/08_large_models (its DCP checkpoint, mostly); the other notebooks
# write a few MB.
DISK_NEED = 1 * GiB
ROUND_TRIP_BATCHES, ROUND_TRIP_BATCH_SIZE = 4, 64

OK, WARN, FAIL = "ok", "warn", "fail"
MARKS = {OK: "✓", WARN: "!", FAIL: "✗"}
PLAIN_MARKS = {OK: "OK  ", WARN: "WARN", FAIL: "FAIL"}  # where stdout cannot encode ✓ and ✗


@dataclass
class Result:
    """What one check found: its status, what was found, and for a problem the fix."""

    name: str
    status: str
    found: str
    fix: str = ""

    def line(self, marks: dict[str, str] = MARKS) -> str:
        """Return the check's one line: mark, name, what was found, and the fix when there is one."""
        text = f"{marks[self.status]} {self.name:<10}  {self.found}"
        return f"{text}; fix: {self.fix}" if self.fix else text


def shown(path: os.PathLike | str) -> str:
    """A path relative to the lab's folder when it is inside it (data/x.gz, .venv/bin/python), else absolute."""
    path = Path(os.path.abspath(path))
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)


PYTHON = shown(sys.executable)  # this environment's Python, as the fixes name it: .venv/bin/python under make


def installed_version(name: str) -> str | None:
    """Return the installed version of the distribution `name`, None when it is not installed."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def read_pins(text: str | None = None) -> dict[str, str]:
    """Return {name: version} of every `name==version` line of requirements.txt (or of `text`), in its order."""
    text = REQUIREMENTS.read_text() if text is None else text
    pins = {}
    for line in text.splitlines():
        spec, _, marker = line.partition("#")[0].partition(";")
        match = re.fullmatch(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*(\S+)\s*", spec)
        if match and _applies(marker):
            pins[match.group(1)] = match.group(2)
    return pins


def _applies(marker: str) -> bool:
    """Whether a requirement's environment marker (`; sys_platform == "linux"`) holds here; True without one."""
    if not marker.strip():
        return True
    try:
        from packaging.markers import Marker

        return Marker(marker).evaluate()
    except Exception:  # no packaging, or a marker it cannot read: check the pin rather than skip it
        return True


def matches(installed: str, pinned: str) -> bool:
    """Whether an installed version is the pinned one (PEP 440: 2.14.1+cpu, the CPU build, is torch==2.14.1)."""
    try:
        from packaging.specifiers import SpecifierSet

        return SpecifierSet(f"=={pinned}").contains(installed, prereleases=True)
    except Exception:  # no packaging, or a version it cannot read
        return installed == pinned or ("+" not in pinned and installed.split("+")[0] == pinned)


def _pin_problems(pins: dict[str, str], version_of: Callable[[str], str | None]) -> list[str]:
    problems = []
    for name, pinned in pins.items():
        installed = version_of(name)
        if installed is None:
            problems.append(f"{name} missing (pinned {pinned})")
        elif not matches(installed, pinned):
            problems.append(f"{name} {installed} (pinned {pinned})")
    return problems


def _listed(items: list[str], most: int = 3) -> str:
    return ", ".join(items[:most]) + (f" and {len(items) - most} more" if len(items) > most else "")


# --- the checks: each returns a Result ----------------------------------------------------------------------------

def check_python(requirements: str | None = None, version_of: Callable[[str], str | None] = installed_version,
                 python_version: tuple[int, ...] = tuple(sys.version_info[:3])) -> Result:
    """This Python is a supported version, every pin is installed at its version, and labutils is this folder's."""
    name = "Python"
    found = ".".join(str(part) for part in python_version)
    if tuple(python_version[:2]) not in SUPPORTED:
        return Result(name, FAIL, f"{PYTHON} is Python {found}; the lab needs {RANGE}",
                      f"rm -rf {shown(sys.prefix)}, then make lab PYTHON=/path/to/python3.12 (tools/check_python.py "
                      "says more)")
    pins = read_pins(requirements)
    problems = _pin_problems(pins, version_of)
    if problems:
        return Result(name, FAIL, f"{len(problems)} of {len(pins)} pins differ: {_listed(problems)}",
                      f"{PYTHON} -m pip install -r requirements.txt (make setup does it for a new .venv)")
    spec = importlib.util.find_spec("labutils")
    where = Path(spec.origin).parent if spec and spec.origin else None
    if where is None or where.resolve() != (ROOT / "labutils").resolve():
        return Result(name, FAIL, "labutils is " + ("not installed" if where is None else f"installed from {where}"),
                      f"{PYTHON} -m pip install --no-deps --no-build-isolation -e .")
    return Result(name, OK, f"{found}; all {len(pins)} pins of requirements.txt match; labutils from this folder")


def lab_environment():
    """The environment variables tools/lab.py starts JupyterLab with (JUPYTER_PREFER_ENV_PATH), for a block."""
    return mock.patch.dict(os.environ, lab.environment())


def _same_python(a: str, b: str) -> bool:
    """The same interpreter in the same environment (not merely the base Python a venv's python links to)."""
    a, b = Path(os.path.abspath(a)), Path(os.path.abspath(b))
    if a == b:
        return True
    try:
        return a.parent == b.parent and os.path.samefile(a, b)
    except OSError:
        return False


def check_kernel(kernel_dirs: list[os.PathLike | str] | None = None, python: str = sys.executable) -> Result:
    """JupyterLab's "python3" kernel is the lab's: it starts this Python and carries the lab's name."""
    name = "Kernel"
    fix = f"{PYTHON} tools/lab.py --install-kernel"
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    with lab_environment():
        manager = KernelSpecManager() if kernel_dirs is None else KernelSpecManager(
            kernel_dirs=[str(d) for d in kernel_dirs])
        try:
            spec = manager.get_kernel_spec(lab.KERNEL_NAME)
        except NoSuchKernel:
            return Result(name, FAIL, f'no "{lab.KERNEL_NAME}" kernelspec found', fix)
    starts = spec.argv[0] if spec.argv else "(nothing)"
    if not _same_python(starts, python):
        return Result(name, FAIL, f'"{lab.KERNEL_NAME}" ({shown(spec.resource_dir)}) starts {shown(starts)}, '
                                  f"not {shown(python)}", fix)
    if spec.display_name != lab.KERNEL_DISPLAY_NAME:
        return Result(name, FAIL, f'"{lab.KERNEL_NAME}" ({shown(spec.resource_dir)}) is named "{spec.display_name}", '
                                  f'not "{lab.KERNEL_DISPLAY_NAME}"', fix)
    return Result(name, OK, f'"{lab.KERNEL_NAME}" is "{spec.display_name}", runs {shown(starts)}')


def check_jupyterlab(pins: dict[str, str] | None = None, version_of: Callable[[str], str | None] = installed_version,
                     labextensions_path: list[os.PathLike | str] | None = None) -> Result:
    """jupyterlab at its pin and importable; ipywidgets' extension among those JupyterLab loads, and not disabled."""
    name = "JupyterLab"
    pins = read_pins() if pins is None else pins
    problems = _pin_problems({"jupyterlab": pins["jupyterlab"]}, version_of)
    if problems:
        return Result(name, FAIL, problems[0], f"{PYTHON} -m pip install -r requirements.txt")
    try:
        import jupyterlab  # noqa: F401  (what `jupyter lab` imports first)
        from jupyter_core.paths import jupyter_path
        from jupyterlab_server.config import get_federated_extensions, get_page_config
    except Exception as err:
        return Result(name, FAIL, f"jupyterlab does not import ({type(err).__name__}: {err})", fix_for(err))
    with lab_environment():  # the folders JupyterLab reads, this environment's first, as make lab runs it
        paths = jupyter_path("labextensions") if labextensions_path is None else [str(p) for p in labextensions_path]
        found = get_federated_extensions(paths).get(WIDGETS)
        widgets = version_of("jupyterlab_widgets")
        reinstall = (f"{PYTHON} -m pip install --force-reinstall --no-deps jupyterlab_widgets=={widgets}" if widgets
                     else f"{PYTHON} -m pip install -r requirements.txt")
        if found is None:
            return Result(name, FAIL, f"{version_of('jupyterlab')}, but ipywidgets' extension {WIDGETS} is not in "
                                      f"{', '.join(shown(p) for p in paths[:2]) or 'any labextensions folder'}",
                          reinstall)
        disabled = get_page_config(paths, app_settings_dir=str(lab.SETTINGS)).get("disabledExtensions") or []
    if WIDGETS in disabled:
        return Result(name, FAIL, f"ipywidgets' extension {WIDGETS} is disabled",
                      f"{PYTHON} -m jupyter labextension enable {WIDGETS}")
    return Result(name, OK, f"{version_of('jupyterlab')}; widgets extension {found['version']} in "
                            f"{shown(found['ext_dir'])}")


def _stat_key(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns


def _restore(files: list[str]) -> str:
    """The fix for bundled files that are missing or damaged: git gives them back; a copy outside the lab
    (LAB_DATA_DIR) is copied again from the lab's data/."""
    if all(not Path(f).is_absolute() for f in files):
        return f"git checkout -- {' '.join(files)}"
    return f"copy {', '.join(Path(f).name for f in files)} again from the lab's data/ (git checkout -- data/ there)"


def check_mnist(root: os.PathLike | str | None = None) -> Result:
    """The bundled .gz files are the canonical MNIST, and data/MNIST/raw, which the lab reads, is extracted from them.

    The .gz files are the source (git tracks them); data/MNIST/raw is made from them on first use, and made again
    when it is damaged, by labutils.verify_mnist. So the .gz files are checked first, with verify_mnist in a scratch
    folder (it decompresses each one and checks the sha256 of what comes out), even where data/MNIST/raw is intact
    and they are not read: a damaged .gz breaks the next fresh clone or `make clean`. Then verify_mnist runs on the
    lab's data as `make data` does: it hashes data/MNIST/raw and extracts again a file that is missing or damaged.
    """
    name = "MNIST"
    from labutils.data import SHA256, DataError, raw_dir, verify_mnist
    from labutils.paths import data_dir

    root = Path(root or data_dir())
    bundled = {entry: root / f"{entry}.gz" for entry in SHA256}
    missing = [shown(path) for path in bundled.values() if not path.is_file()]
    if missing:
        return Result(name, FAIL, f"{_listed(missing, 4)} missing", _restore(missing))
    with tempfile.TemporaryDirectory(prefix="lab-doctor-") as scratch:
        for path in bundled.values():
            os.symlink(path.absolute(), Path(scratch) / path.name)
        try:
            with contextlib.redirect_stderr(io.StringIO()):
                verify_mnist(scratch)
        except DataError as err:  # verify_mnist stops at the first bad file: the first one it did not extract
            bad = next(entry for entry in SHA256 if not (raw_dir(scratch) / entry).exists())
            why = ("cannot be decompressed" if err.__cause__ is not None
                   else "does not decompress to the canonical file (sha256 differs)")
            rest = list(SHA256)[list(SHA256).index(bad) + 1:]
            return Result(name, FAIL, f"{shown(bundled[bad])} is damaged: it {why}"
                                      + ("; the files after it were not checked" if rest else ""),
                          _restore([shown(bundled[bad])]))
    raw = raw_dir(root)
    before = {entry: _stat_key(raw / entry) for entry in SHA256}
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            verify_mnist(root)
    except (DataError, OSError) as err:
        return Result(name, FAIL, f"{shown(raw)} cannot be made: {err}",
                      f"make data where {shown(raw)} is writable (on a hub: in the image)")
    after = {entry: _stat_key(raw / entry) for entry in SHA256}
    redone = [shown(raw / e) for e in SHA256 if before[e] is not None and before[e] != after[e]]
    if redone:
        return Result(name, WARN, f"{_listed(redone, 4)} was damaged: extracted again from the .gz, now intact",
                      "nothing more; if it happens again, check the disk")
    made = " (extracted now)" if any(before[e] is None for e in SHA256) else ""
    return Result(name, OK, f"{len(SHA256)} bundled .gz in {shown(root)}/ and {shown(raw)}/{made}: sha256 OK")


def _gib(n: float) -> str:
    return f"{n / GiB:.1f} GiB"


_MEASURE = object()


def check_disk(need: int = DISK_NEED, free: int | None = None) -> Result:
    """The artifacts folder can be written and has room for notebook 08."""
    name = "Disk"
    paths = lab._lab_paths()  # labutils/paths.py without labutils/__init__ (which imports torch)
    try:
        folder = paths.artifacts_dir()  # LAB_ARTIFACTS_DIR, else artifacts/; made when missing, as the lab does
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        return Result(name, FAIL, f"cannot write artifacts to {err.filename or 'the artifacts folder'}: "
                                  f"{err.strerror or err}",
                      "make it writable, or set LAB_ARTIFACTS_DIR to a folder you can write")
    free = shutil.disk_usage(folder).free if free is None else free
    if free < need:
        return Result(name, FAIL, f"{_gib(free)} free for {shown(folder)}/; notebook 08 needs {_gib(need)}",
                      f"free {_gib(need - free)} on that disk, or set LAB_ARTIFACTS_DIR to a folder on another")
    return Result(name, OK, f"{_gib(free)} free for {shown(folder)}/ (notebook 08 needs {_gib(need)})")


def check_memory(need: int = MEMORY_NEED, available: int | None | object = _MEASURE) -> Result:
    """Enough memory is available for notebook 08; where it cannot be measured (macOS), say so as a warning."""
    name = "Memory"
    if available is _MEASURE:
        from labutils.large import free_memory_bytes  # MemAvailable, or less under a container's limit (a hub's)

        available = free_memory_bytes()
    if available is None:
        return Result(name, WARN, f"not checked: no /proc/meminfo here (macOS); notebook 08 needs {_gib(need)} free",
                      "look at Activity Monitor's Memory tab before class")
    if available < need:
        return Result(name, FAIL, f"{_gib(available)} available; notebook 08 needs {_gib(need)}",
                      "close other programs (or raise the hub's memory limit); with less, 08 measures a smaller model")
    return Result(name, OK, f"{_gib(available)} available (notebook 08 needs {_gib(need)})")


def check_round_trip(load: Callable | None = None) -> Result:
    """A Net trained on a few batches of MNIST, saved and loaded with labutils.checkpoint: the same weights and
    outputs (the lab's exact-equality promise for save -> load, within one run)."""
    name = "Round trip"
    fix = f"{PYTHON} -m pytest tests/test_checkpoint.py shows the cause"
    start = time.perf_counter()
    import torch

    from labutils.checkpoint import load_checkpoint, save_checkpoint
    from labutils.data import mnist_tensors
    from labutils.models import Net
    from labutils.train import make_loader, train_one_epoch

    load = load or load_checkpoint
    images, labels = mnist_tensors(train=True, subset=ROUND_TRIP_BATCHES * ROUND_TRIP_BATCH_SIZE)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny Net: one thread is enough, and a busy CPU does not slow it (no spinning threads)
    try:
        with torch.random.fork_rng(devices=[]):  # the caller's random state stays as it was
            torch.manual_seed(0)
            net, fresh = Net(), Net()
        optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
        loader = make_loader(images, labels, batch_size=ROUND_TRIP_BATCH_SIZE, seed=0)
        batches = len(train_one_epoch(net, loader, optimizer)["batch_losses"])
        net.eval()
        with tempfile.TemporaryDirectory(prefix="lab-doctor-") as folder:
            path = Path(folder) / "net.pt"
            save_checkpoint({"model": net.state_dict(), "optimizer": optimizer.state_dict()}, path)
            size = path.stat().st_size
            state = load(path)
        saved = net.state_dict()
        differ = [key for key, tensor in saved.items()
                  if key not in state["model"] or not torch.equal(tensor, state["model"][key])]
        if differ:
            return Result(name, FAIL, f"loaded weights differ from the saved ones: {_listed(differ)}", fix)
        fresh.load_state_dict(state["model"])
        fresh.eval()
        with torch.no_grad():
            if not torch.equal(net(images), fresh(images)):
                return Result(name, FAIL, "the loaded Net's outputs differ from the saved Net's", fix)
    finally:
        torch.set_num_threads(threads)
    return Result(name, OK, f"Net trained on {batches} batches, {size / 1024:.0f} KiB saved, loaded: "
                            f"{len(saved)} tensors and the outputs equal ({time.perf_counter() - start:.1f} s)")


def check_language(language: str = "zh-CN", pins: dict[str, str] | None = None,
                   version_of: Callable[[str], str | None] = installed_version, packs: dict | None = None,
                   notebooks_dir: os.PathLike | str | None = None) -> Result:
    """The edition in `language`: its pinned JupyterLab language pack, listed by JupyterLab, and its notebooks."""
    name = language
    package = f"jupyterlab-language-pack-{language}"
    pins = read_pins() if pins is None else pins
    pinned = {n: v for n, v in pins.items() if n.lower() == package.lower()}
    if not pinned:
        return Result(name, FAIL, f"requirements.txt pins no {package}", "pin it in requirements.txt")
    problems = _pin_problems(pinned, version_of)
    if problems:
        return Result(name, FAIL, problems[0], f"{PYTHON} -m pip install -r requirements.txt")
    locale = language.replace("-", "_")
    if packs is None:
        from jupyterlab_server.translation_utils import get_language_packs

        packs = get_language_packs()[0]
    if locale not in packs:
        return Result(name, FAIL, f"{package} is installed but JupyterLab lists no {locale} pack",
                      f"{PYTHON} -m pip install --force-reinstall --no-deps {package}=={pinned[next(iter(pinned))]}")
    folder = Path(notebooks_dir) if notebooks_dir else ROOT / "notebooks"
    english = lab.notebooks(folder)
    missing = [shown(nb.with_name(f"{nb.stem}.{language}.ipynb")) for nb in english
               if not nb.with_name(f"{nb.stem}.{language}.ipynb").is_file()]
    if missing or not english:
        return Result(name, FAIL, f"{_listed(missing) if missing else 'no notebooks'} missing",
                      f"git checkout -- {' '.join(missing) or shown(folder)} (or make translations)")
    return Result(name, OK, f"{package} {version_of(package)}; {len(english)} notebooks in {language}, "
                            f"from {shown(folder / Path(lab.LANGUAGES[language][0]).name)}")


# --- running them ---------------------------------------------------------------------------------------------------

def checks(language: str = "en") -> list[tuple[str, Callable[[], Result]]]:
    """The checks to run, in order, as (name, function): the name stands in for a check that raises."""
    found = [("Python", check_python), ("Kernel", check_kernel), ("JupyterLab", check_jupyterlab),
             ("MNIST", check_mnist), ("Disk", check_disk), ("Memory", check_memory),
             ("Round trip", check_round_trip)]
    if language != "en":
        found.append((language, lambda: check_language(language)))
    return found


def run_check(name: str, check: Callable[[], Result]) -> Result:
    """Run one check; an exception becomes its failure line (a broken install says so instead of a traceback)."""
    try:
        return check()
    except Exception as err:
        message = str(err).strip().splitlines()[0] if str(err).strip() else ""
        return Result(name, FAIL, f"the check failed: {type(err).__name__}{': ' + message[:160] if message else ''}",
                      fix_for(err))


def fix_for(err: Exception) -> str:
    """The fix for a check that raised: a missing module is installed; a package that fails to import (a broken
    install: a missing shared library, a half-finished upgrade) is installed again at its pin."""
    if isinstance(err, ImportError) and not isinstance(err, ModuleNotFoundError):
        frames = [Path(frame.filename).parts for frame in traceback.extract_tb(err.__traceback__)]
        for parts in reversed(frames):  # the innermost frame in an installed package: the one that failed
            if "site-packages" in parts[:-1]:
                top = parts[parts.index("site-packages") + 1].removesuffix(".py")
                pins = {n.lower().replace("_", "-"): (n, v) for n, v in read_pins().items()}
                for dist in importlib.metadata.packages_distributions().get(top, []):
                    if dist.lower().replace("_", "-") in pins:
                        pinned, version = pins[dist.lower().replace("_", "-")]
                        return f"{PYTHON} -m pip install --force-reinstall --no-deps {pinned}=={version}"
                break
        return f"{PYTHON} -m pip install --force-reinstall -r requirements.txt"
    if isinstance(err, ImportError):
        return f"{PYTHON} -m pip install -r requirements.txt"
    return (f"{PYTHON} -m pip install -r requirements.txt; if the line stays, run {PYTHON} tools/doctor.py again "
            "and report it")


def marks_for(stream) -> dict[str, str]:
    """✓ and ✗ where the stream can encode them, else plain words."""
    try:
        "".join(MARKS.values()).encode(getattr(stream, "encoding", None) or "ascii")
    except (UnicodeEncodeError, LookupError):
        return PLAIN_MARKS
    return MARKS


def summary(results: list[Result]) -> str:
    """The last line: ready, or the problems by name."""
    failed = [r.name for r in results if r.status == FAIL]
    warned = [r.name for r in results if r.status == WARN]
    if failed:
        return (f"NOT READY: {len(failed)} problem{'s' if len(failed) > 1 else ''}: {', '.join(failed)}. "
                "Fix as the lines above say, then run make doctor again.")
    return f"Ready for the lab: {len(results)} checks passed" + (f" ({', '.join(warned)}: see the warning)."
                                                                   if warned else ".")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tools/doctor.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--language", choices=sorted(lab.LANGUAGES), default="en",
                        help="zh-CN: also check the Chinese edition (make doctor LAB_LANG=zh-CN)")
    args = parser.parse_args(argv)
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="replace")  # a path or message in another script never stops the report
    marks = marks_for(sys.stdout)
    results = []
    for name, check in checks(args.language):
        results.append(run_check(name, check))
        print(results[-1].line(marks), flush=True)
        if name == "Python" and str(ROOT) not in sys.path:
            # labutils must be installed (the Python line says so when it is not); the next checks still look at
            # the data and the round trip with this folder's copy
            sys.path.append(str(ROOT))
    print(summary(results))
    return 1 if any(r.status == FAIL for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
