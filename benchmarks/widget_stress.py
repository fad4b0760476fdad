"""Run the notebooks that show widgets (01, 02, 05) many times headless, on an empty cache, with the CPU busy.

Each run is a papermill execution through labutils.runner (the same path as the tests and `make regress`),
in a fresh artifacts folder, so every run trains its Net and shows tqdm's progress widget before the
notebook's own widgets. Meanwhile one busy-looping process per core keeps the CPU loaded: a slow client is
what turned the widget race of jupyter/nbclient#312 into a hang. A run counts as
  ok       every cell ran and came back before its timeout;
  hang     a cell came back only when its timeout fired: the kernel had replied, the client missed it
           (MissedReply, the hang this script looks for);
  timeout  a cell was still running after --timeout seconds (CellTimeout: the kernel was busy, or stuck);
  failure  a cell raised, or the kernel died.
The kernels run torch on one thread (--kernel-threads): with every core busy, a second torch thread waits
for the first at each step and training runs six times slower; the client, whose lateness opens the race,
competes with the load all the same. The executed notebook of every run that is not ok is kept in --keep.
Exit status 1 unless every run is ok. The parameters are the small regression sets (NN-small) of
tests/regression/params.yaml (1 epoch on 10,000 images), except that 05 draws one few-shot sample per size
instead of two (its widgets stay as they are; its transfer experiment takes half the time); --defaults runs
each notebook as committed. --edition zh-CN runs their Chinese editions (NN_name.zh-CN.ipynb: the same code, the
text and the checks' messages in Chinese).
Usage:
    python benchmarks/widget_stress.py [--runs 20] [--notebooks 01 02 05] [--timeout 600] [--no-load] [--defaults]
                                       [--kernel-threads 1] [--keep reports/stress] [--edition zh-CN]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import papermill

from labutils.paths import REPO_ROOT
from labutils.runner import CELL_TIMEOUT, CellTimeout, MissedReply, run_notebook

NOTEBOOKS = {"01": "01_define_net", "02": "02_train_mnist", "05": "05_partial_loading"}
LIGHTER = {"05_partial_loading": {"REPEATS": 1}}
BURNER = "import signal, sys; signal.alarm(int(sys.argv[1]))\nwhile True: pass"  # dies by itself at the latest then


def fast_parameters(notebook: str) -> dict:
    """Return the parameters of the notebook's small regression set (`NN-small` in tests/regression/params.yaml,
    whether or not `make test` runs it)."""
    sys.path.insert(0, str(REPO_ROOT / "tests"))
    from regression.regress import load_plan

    runs, _ = load_plan()
    small = next(run.parameters for run in runs if run.id == f"{notebook[:2]}-small")
    return {**small, **LIGHTER.get(notebook, {})}


def start_load(seconds: int) -> list[subprocess.Popen]:
    """Start one busy-looping process per core, each ending by itself after `seconds` at the latest."""
    return [subprocess.Popen([sys.executable, "-c", BURNER, str(seconds)]) for _ in range(os.cpu_count() or 1)]


def run_once(notebook: str, parameters: dict, timeout: float, keep: Path, edition: str = "en"
             ) -> tuple[str, str, float]:
    """Run one notebook (`edition` "zh-CN": its Chinese edition) on an empty artifacts folder; return (outcome,
    detail, seconds)."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lab-stress-") as work:
        os.environ["LAB_ARTIFACTS_DIR"] = str(Path(work) / "artifacts")
        os.environ["LAB_METRICS_DIR"] = str(Path(work) / "metrics")
        executed = Path(work) / f"{notebook}.ipynb"
        try:
            name = notebook if edition == "en" else f"{notebook}.{edition}"
            run_notebook(REPO_ROOT / "notebooks" / f"{name}.ipynb", executed, parameters=parameters, timeout=timeout)
            outcome, detail = "ok", ""
        except MissedReply as err:
            outcome, detail = "hang", str(err)
        except CellTimeout as err:
            outcome, detail = "timeout", str(err)
        except papermill.PapermillExecutionError as err:
            outcome, detail = "failure", f"cell {err.cell_index}: {err.ename}: {err.evalue}"
        except Exception as err:  # the kernel died, it could not start: a failure to report, not to stop on
            outcome, detail = "failure", f"{type(err).__name__}: {err}"
        if outcome != "ok" and executed.exists():
            keep.mkdir(parents=True, exist_ok=True)
            kept = keep / f"{notebook}-{time.strftime('%Y%m%d-%H%M%S')}-{outcome}.ipynb"
            shutil.copy(executed, kept)
            detail += f" (kept as {kept})"
    return outcome, detail, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="runs of each notebook (default %(default)s)")
    parser.add_argument("--notebooks", nargs="+", default=list(NOTEBOOKS), choices=list(NOTEBOOKS))
    parser.add_argument("--timeout", type=float, default=CELL_TIMEOUT, help="seconds per cell (default %(default)s)")
    parser.add_argument("--no-load", action="store_true", help="leave the CPU idle")
    parser.add_argument("--defaults", action="store_true", help="the notebooks' own parameters, not the fast sets")
    parser.add_argument("--kernel-threads", type=int, default=1,
                        help="torch threads in each kernel (OMP_NUM_THREADS); 0 leaves torch's default (default 1)")
    parser.add_argument("--keep", type=Path, default=REPO_ROOT / "reports" / "stress",
                        help="where the executed notebooks of runs that were not ok go (default reports/stress)")
    parser.add_argument("--edition", choices=["en", "zh-CN"], default="en",
                        help="zh-CN runs the Chinese notebooks (default %(default)s)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error(f"--runs {args.runs} is not allowed: use 1 or more")

    if args.kernel_threads > 0:  # the kernels inherit this process's environment
        os.environ["OMP_NUM_THREADS"] = str(args.kernel_threads)
    plan = {key: {} if args.defaults else fast_parameters(NOTEBOOKS[key]) for key in args.notebooks}
    outcomes: dict[str, list[tuple[str, str, float]]] = {key: [] for key in args.notebooks}
    load = [] if args.no_load else start_load(int(args.runs * len(plan) * (args.timeout + 300)))
    print(f"{args.runs} runs each of {', '.join(NOTEBOOKS[k] for k in plan)} ({args.edition}); "
          f"cell timeout {args.timeout:g} s; "
          f"CPU {'idle' if args.no_load else f'kept busy by {len(load)} processes'}; "
          f"torch threads per kernel: {os.environ.get('OMP_NUM_THREADS', 'default')}", flush=True)
    try:
        for i in range(args.runs):  # interleaved, as a suite runs one notebook after another in one process
            for key, parameters in plan.items():
                outcome, detail, seconds = run_once(NOTEBOOKS[key], parameters, args.timeout, args.keep, args.edition)
                outcomes[key].append((outcome, detail, seconds))
                print(f"run {i + 1:>3} {NOTEBOOKS[key]:<20} {outcome:<8} {seconds:6.1f} s {detail}", flush=True)
    finally:
        for process in load:
            process.kill()
            process.wait(timeout=10)

    print("\n| notebook | runs | ok | hangs | timeouts | failures | median s | max s |\n"
          "|---|---|---|---|---|---|---|---|")
    bad = 0
    for key, results in outcomes.items():
        counts = {kind: sum(r[0] == kind for r in results) for kind in ("ok", "hang", "timeout", "failure")}
        bad += len(results) - counts["ok"]
        seconds = [r[2] for r in results]
        print(f"| {NOTEBOOKS[key]} | {len(results)} | {counts['ok']} | {counts['hang']} | {counts['timeout']} | "
              f"{counts['failure']} | {statistics.median(seconds):.1f} | {max(seconds):.1f} |")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
