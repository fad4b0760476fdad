"""How big a server does a class need? `make rehearsal LEARNERS=N` (root; not part of `make test`).

N simulated learners log in to a real hub (classroom.py's, on free local ports, in a temporary folder) and work
through the lab's notebooks in order, all at once, each cell run through their server's kernel websocket as
JupyterLab runs it, and each notebook saved with its outputs. By default each notebook runs with its small
parameter set from tests/regression/params.yaml (a one-epoch Net on 10,000 digits, fewer repeats); `--defaults`
runs them as they ship, with the shared cache's trained Net, as a class does.

The report (printed, and written to reports/rehearsal-N.md and .json):
- per notebook: the median and slowest learner's wall time, and the CPU-seconds its kernel used (its process and
  the processes it waited for), median over the learners;
- per learner: the peak memory of everything their Unix user ran (server, kernel, its workers), as PSS (shared
  pages split between the processes that map them, so the learners' figures add up) and as RSS;
- the machine: the peak of memory in use (MemTotal - MemAvailable) above what it was before, and the load.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import pwd
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import classroom  # noqa: E402
import client  # noqa: E402

PROBE = """import json, resource
_s, _c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"cpu": _s.ru_utime + _s.ru_stime + _c.ru_utime + _c.ru_stime,
                  "maxrss_mb": max(_s.ru_maxrss, _c.ru_maxrss) / 1024}))"""
SMALL = {  # notebook -> the id of its small run in tests/regression/params.yaml
    "00_welcome": "00-seed-1", "01_define_net": "01-small", "02_train_mnist": "02-small", "03_saving": "03-small",
    "04_loading": "04-small", "05_partial_loading": "05-small", "06_resume_training": "06-stop-before-first-checkpoint",
    "07_deploy_and_share": "07-small", "08_large_models": "08-small-three-processes",
    "09_troubleshooting_clinic": "09-small", "10_language_model": "10-small", "11_frameworks": "11-small",
    "12_capstone_project": "12-defaults"}


def parameter_sets(defaults: bool) -> dict[str, dict]:
    if defaults:
        return {name: {} for name in SMALL}
    import yaml

    runs = {run["id"]: run for run in yaml.safe_load((classroom.LAB / "tests" / "regression" / "params.yaml")
                                                    .read_text(encoding="utf-8"))["runs"]}
    return {name: runs[run_id].get("parameters") or {} for name, run_id in SMALL.items()}


class MemorySampler(threading.Thread):
    """Every `every` seconds: each learner's total PSS and RSS (all processes of their Unix user), and the
    machine's memory in use. Keeps the peaks."""

    def __init__(self, uids: dict[int, str], every: float = 1.0):
        super().__init__(daemon=True)
        self.uids, self.every, self.stopped = uids, every, threading.Event()
        self.peak_pss = dict.fromkeys(uids.values(), 0.0)
        self.peak_rss = dict.fromkeys(uids.values(), 0.0)
        self.baseline = self.used_mb()
        self.peak_used = self.baseline
        self.samples = 0
        self.disk: dict[str, float] = {}

    @staticmethod
    def used_mb() -> float:
        info = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
        return (int(info["MemTotal"].split()[0]) - int(info["MemAvailable"].split()[0])) / 1024

    def run(self) -> None:
        while not self.stopped.wait(self.every):
            pss, rss = dict.fromkeys(self.peak_pss, 0.0), dict.fromkeys(self.peak_pss, 0.0)
            for proc in Path("/proc").glob("[0-9]*"):
                try:
                    uid = proc.stat().st_uid
                    if uid not in self.uids:
                        continue
                    rollup = dict(line.split(":", 1)  # the first line names the address range
                                  for line in (proc / "smaps_rollup").read_text().splitlines()[1:])
                    name = self.uids[uid]
                    pss[name] += int(rollup["Pss"].split()[0]) / 1024
                    rss[name] += int(rollup["Rss"].split()[0]) / 1024
                except (OSError, KeyError, ValueError):
                    continue
            for name in pss:
                self.peak_pss[name] = max(self.peak_pss[name], pss[name])
                self.peak_rss[name] = max(self.peak_rss[name], rss[name])
            self.peak_used = max(self.peak_used, self.used_mb())
            self.samples += 1


async def learner(hub: client.Hub, name: str, password: str, notebooks: list[str], parameters: dict[str, dict],
                  log) -> dict:
    if hub.login(name, password) != 302:
        raise client.HubError(f"{name} could not log in")
    await asyncio.to_thread(hub.start, name)
    server = client.Server(hub, name, hub.user_token(name))
    results = {}
    for notebook in notebooks:
        path = f"{classroom.COPY_NAME}/notebooks/{notebook}.ipynb"
        started = time.monotonic()
        try:
            ran = await client.run_notebook(server, path, parameters[notebook], probe=PROBE)
            usage = json.loads(ran["probe"].strip().splitlines()[-1])
            results[notebook] = {"seconds": round(ran["seconds"], 1), "cpu": round(usage["cpu"], 1),
                                 "kernel_maxrss_mb": round(usage["maxrss_mb"])}
        except Exception as err:  # noqa: BLE001  (a notebook that fails is reported, and the learner goes on)
            results[notebook] = {"seconds": round(time.monotonic() - started, 1), "error": str(err)[:300]}
        log(f"{name}: {notebook} {results[notebook]}")
    return results


def report(n: int, results: dict[str, dict], sampler: MemorySampler, wall: float, load: tuple, small: bool,
           cores: int) -> str:
    notebooks = list(next(iter(results.values())))
    lines = [f"# Rehearsal: {n} learner(s) at once, {'small parameter sets' if small else 'default parameters'}",
             "", f"{cores} cores; the whole run took {wall:.0f} s; load average after it {load[0]:.1f}.", "",
             "| notebook | wall s (median) | wall s (slowest) | kernel CPU-s (median) | failed |",
             "|---|---|---|---|---|"]
    totals = {"cpu": [], "seconds": []}
    for notebook in notebooks:
        rows = [r[notebook] for r in results.values()]
        good = [r for r in rows if "error" not in r]
        failed = len(rows) - len(good)
        if good:
            lines.append(f"| {notebook} | {statistics.median(r['seconds'] for r in good):.1f} | "
                         f"{max(r['seconds'] for r in good):.1f} | {statistics.median(r['cpu'] for r in good):.1f} | "
                         f"{failed or ''} |")
        else:
            lines.append(f"| {notebook} | | | | {failed} |")
    for name, rows in results.items():
        totals["cpu"].append(sum(r.get("cpu", 0) for r in rows.values()))
        totals["seconds"].append(sum(r["seconds"] for r in rows.values()))
    lines += [(f"| **all** | {statistics.median(totals['seconds']):.0f} | {max(totals['seconds']):.0f} | "
              f"{statistics.median(totals['cpu']):.0f} | |"), "",
              "| learner | peak memory, PSS MB | peak memory, RSS MB | home folder at the end, MB |",
              "|---|---|---|---|"]
    for name in results:
        lines.append(f"| {name} | {sampler.peak_pss[name]:.0f} | {sampler.peak_rss[name]:.0f} | "
                     f"{sampler.disk.get(name, 0):.0f} |")
    lines += ["", (f"Machine: memory in use peaked {sampler.peak_used - sampler.baseline:.0f} MB above the "
              f"{sampler.baseline:.0f} MB in use before ({sampler.samples} samples, one a second).")]
    errors = [f"- {name}, {nb}: {r['error']}" for name, rows in results.items() for nb, r in rows.items()
              if "error" in r]
    if errors:
        lines += ["", "Failures:", *errors]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tools/hub/rehearsal.py", description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=4)
    parser.add_argument("--defaults", action="store_true", help="the notebooks' own parameters, not the small sets")
    parser.add_argument("--notebooks", nargs="+", metavar="NN", help="only these notebooks (by number)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stopped: the hub, its users and its folder go too
    folders = classroom.Folders(Path(tempfile.mkdtemp(prefix="lab-rehearsal-")))
    problems = [p for p in classroom.check_machine(folders) if "cannot get through" not in p]
    if problems:
        print("The rehearsal cannot run here:\n" + "\n".join(f"- {p}" for p in problems), file=sys.stderr)
        return 1
    notebooks = [n for n in SMALL if not args.notebooks or n[:2] in args.notebooks]
    parameters = parameter_sets(args.defaults)
    names = [f"learner{i:02d}" for i in range(1, args.learners + 1)]
    started = time.monotonic()

    def log(text: str) -> None:
        print(f"[{time.monotonic() - started:6.0f} s] {text}", flush=True)

    try:
        with classroom.passable_for_others([*classroom.lab_paths_learners_need(), folders.root]) as opened:
            if opened:
                log(f"learners' users may pass through {', '.join(map(str, opened))} during the rehearsal")
            with classroom.started_hub(folders, names) as (url, token, passwords):
                log(f"hub at {url}; shared cache ready")
                hub = client.Hub(url, token)
                for name in names:  # the Unix users exist from the first start; make them now to watch them
                    classroom.prepare_home(folders, name)
                uids = {pwd.getpwnam(classroom.system_user(n)).pw_uid: n for n in names}
                sampler = MemorySampler(uids)
                sampler.start()
                begin = time.monotonic()

                async def everyone():
                    return await asyncio.gather(*(learner(hub, n, passwords[n], notebooks, parameters, log)
                                                  for n in names))

                results = dict(zip(names, asyncio.run(everyone())))
                wall = time.monotonic() - begin
                sampler.stopped.set()
                sampler.join()
                sampler.disk = {n: sum(p.stat().st_size for p in folders.home(n).rglob("*") if p.is_file()) / 2**20
                                for n in names}
                text = report(len(names), results, sampler, wall, os.getloadavg(), not args.defaults,
                              os.cpu_count() or 1)
    finally:
        shutil.rmtree(folders.root, ignore_errors=True)
    print(text)
    out = classroom.LAB / "reports"
    out.mkdir(exist_ok=True)
    stem = f"rehearsal-{len(names)}{'-defaults' if args.defaults else ''}"
    (out / f"{stem}.md").write_text(text, encoding="utf-8")
    (out / f"{stem}.json").write_text(json.dumps({"learners": results, "wall": wall,
                                                  "peak_pss_mb": sampler.peak_pss, "peak_rss_mb": sampler.peak_rss,
                                                  "machine_peak_mb": sampler.peak_used - sampler.baseline,
                                                  "disk_mb": sampler.disk},
                                                 indent=1), encoding="utf-8")
    print(f"Written to {out / stem}.md and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
