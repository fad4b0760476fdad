"""Run the notebooks with the parameter sets in params.yaml, collect their metrics, compare them with the baselines.

    python tests/regression/regress.py [--fast] [--only ID ...] [--out reports] [--update-baselines]

Writes OUT/regression.json and OUT/regression.md (every metric: baseline, value, tolerance, status) and
prints each regression as `RUN (NOTEBOOK): METRIC is VALUE, baseline BASELINE (tolerance)`.
Exit status: 0 when every metric is within its tolerance, 1 on a regression, 2 on a usage error.
"""
from __future__ import annotations

import argparse
import fnmatch
import json
import math
import os
import re
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from unittest import mock

import yaml

from labutils._io import atomic_write_bytes

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
PARAMS = HERE / "params.yaml"
BASELINES = HERE / "baselines.json"
FAILED = "(the notebook failed)"


@dataclass
class Run:
    id: str
    notebook: str
    parameters: dict = field(default_factory=dict)
    fast: bool = False
    edition: str = "en"  # "zh-CN" runs the Chinese notebook (the same code, tools/translations.py)

    @property
    def path(self) -> Path:
        """The notebook this run executes: NN_name.ipynb, or its Chinese edition NN_name.zh-CN.ipynb."""
        suffix = "" if self.edition == "en" else f".{self.edition}"
        return REPO_ROOT / "notebooks" / f"{self.notebook}{suffix}.ipynb"


@dataclass
class Row:
    run: str
    notebook: str
    metric: str
    baseline: object
    value: object
    tolerance: str
    status: str  # ok, REGRESSION, new (no baseline yet), info

    def line(self) -> str:
        return (f"{self.run} ({self.notebook}): {self.metric} is {_show(self.value)}, baseline {_show(self.baseline)} "
                f"({self.tolerance})")


def load_plan(path: Path | None = None) -> tuple[list[Run], list[dict]]:
    """Read the runs and the tolerance rules, refusing a file that would run something else than it says."""
    path = path or PARAMS
    plan = yaml.safe_load(path.read_text())
    try:
        runs = [Run(**entry) for entry in plan["runs"]]
    except TypeError as err:
        raise ValueError(f"{path.name}: each run takes id, notebook, parameters, fast and edition; {err}") from None
    ids = [run.id for run in runs]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise ValueError(f"{path.name}: run ids must be unique; repeated: {', '.join(duplicated)}")
    for run in runs:
        if run.edition not in ("en", "zh-CN"):
            raise ValueError(f"{path.name}: run {run.id} has edition {run.edition!r}; the lab has en and zh-CN")
        if not run.path.is_file():
            raise ValueError(f"{path.name}: run {run.id} names notebooks/{run.path.name}, which does not exist")
    for rule in plan["tolerances"]:
        if not ({"match"} < set(rule) and len(rule) == 2 and (rule.get("kind") in ("exact", "info", "error") or
                                                              set(rule) & {"abs", "rel", "max"})):
            raise ValueError(f"{path.name}: a tolerance needs match plus one of kind (exact/info/error), abs, rel or "
                             "max; "
                             f"found {rule}")
    return runs, plan["tolerances"]


def execute(runs: list[Run], folder: Path, kernel=None) -> dict[str, dict]:
    """Run each notebook with papermill, in order, on one artifacts folder; return {run id: metrics or failure}.

    Each notebook gets a kernel of its own, or they all run in `kernel` (a labutils.runner.SharedKernel).
    Each run's metrics gain `run_seconds`, the wall time of the whole notebook (a timing: shown, never compared).
    """
    import papermill

    from labutils.runner import run_notebook

    results: dict[str, dict] = {}
    (folder / "notebooks").mkdir(parents=True, exist_ok=True)
    for run in runs:
        metrics_dir = folder / "metrics" / run.id
        shutil.rmtree(metrics_dir, ignore_errors=True)
        start = time.perf_counter()
        with mock.patch.dict(os.environ, LAB_ARTIFACTS_DIR=str(folder / "artifacts"), LAB_METRICS_DIR=str(metrics_dir)):
            try:
                run_notebook(run.path, folder / "notebooks" / f"{run.id}.ipynb", parameters=run.parameters,
                             kernel=kernel)
            except papermill.PapermillExecutionError as err:  # a cell raised: its error, as the learner sees it
                results[run.id] = {FAILED: f"{err.ename}: {str(err.evalue).splitlines()[0] if err.evalue else ''}"}
                continue
            except Exception as err:  # a cell timed out or lost its reply, the kernel died: report it, go on
                first_line = str(err).strip().splitlines()[0] if str(err).strip() else ""
                results[run.id] = {FAILED: f"{type(err).__name__}: {first_line}"}
                continue
        path = metrics_dir / f"{run.notebook}.json"
        results[run.id] = json.loads(path.read_text()) if path.exists() else {FAILED: "it recorded no metrics"}
        results[run.id]["run_seconds"] = round(time.perf_counter() - start, 1)  # kernel start to last cell
    return results


def flatten(value: object, prefix: str = "") -> dict[str, object]:
    """Turn nested dicts and lists into {"a/b/0": leaf}; metric names may hold dots, so the separator is /."""
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return {prefix: value}
    flat: dict[str, object] = {}
    for key, item in items:
        flat |= flatten(item, f"{prefix}/{key}" if prefix else str(key))
    return flat


def rule_for(metric: str, rules: list[dict]) -> dict:
    """Return the first rule whose pattern matches the metric's path."""
    return next(rule for rule in rules if fnmatch.fnmatchcase(metric, rule["match"]))


def describe(rule: dict) -> str:
    for key in ("abs", "rel", "max"):
        if key in rule:
            return f"{key} {rule[key]:g}" if key != "max" else f"at most {rule[key]:g}"
    return rule["kind"]


ERROR_CLASS = re.compile(r"([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt)): ")


ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")  # Python 3.13 colours a traceback where FORCE_COLOR is set


def error_class(text: object) -> str | None:
    """The exception class an error text starts with ("RuntimeError: ..." gives RuntimeError), else None."""
    match = ERROR_CLASS.match(ANSI_ESCAPE.sub("", text)) if isinstance(text, str) else None
    return match.group(1) if match else None


def within(value: object, baseline: object, rule: dict) -> bool:
    """Say whether `value` passes `rule` against `baseline`.

    kind: error compares the exception class only: the wording is torch's or Python's and may change with a
    release, while what the lab teaches about it is asserted in the notebook's own cell.
    """
    if rule.get("kind") == "info":
        return True
    if rule.get("kind") == "error":
        return error_class(baseline) is not None and error_class(value) == error_class(baseline)
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (value, baseline))
    if "max" in rule:
        return isinstance(value, (int, float)) and value <= rule["max"]
    if numbers and ("abs" in rule or "rel" in rule):
        if math.isnan(value) or math.isnan(baseline):
            return False
        bound = rule["abs"] if "abs" in rule else rule["rel"] * abs(baseline)
        return abs(value - baseline) <= bound
    return value == baseline and type(value) is type(baseline)


def compare(runs: list[Run], results: dict[str, dict], baselines: dict[str, dict], rules: list[dict]) -> list[Row]:
    """Compare every run's flattened metrics with its baseline; a metric that disappeared is a regression."""
    rows = []
    for run in runs:
        if run.id not in results:
            continue
        values, expected = flatten(results[run.id]), baselines.get(run.id, {})
        if FAILED in values:
            rows.append(Row(run.id, run.notebook, FAILED, None, values[FAILED], "must run", "REGRESSION"))
            continue
        for metric in sorted(set(values) | set(expected)):
            rule = rule_for(metric, rules)
            value, baseline = values.get(metric, "(missing)"), expected.get(metric, "(none)")
            if metric not in expected:
                status = "new"
            elif metric not in values:
                status = "REGRESSION"
            elif rule.get("kind") == "info":
                status = "info"
            else:
                status = "ok" if within(value, baseline, rule) else "REGRESSION"
            rows.append(Row(run.id, run.notebook, metric, baseline, value, describe(rule), status))
    return rows


def load_baselines() -> dict[str, dict]:
    """Return the committed baselines, {run id: {metric path: value}}."""
    return json.loads(BASELINES.read_text()) if BASELINES.exists() else {}


def _show(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def write_report(rows: list[Row], out: Path) -> tuple[Path, Path]:
    """Write regression.json (every row) and regression.md (regressions first, then the rest)."""
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "regression.json", out / "regression.md"
    json_path.write_text(json.dumps([asdict(row) for row in rows], indent=1, default=str))
    order = {"REGRESSION": 0, "new": 1, "info": 2, "ok": 3}
    bad = sum(row.status == "REGRESSION" for row in rows)
    lines = [f"# Regression runs: {bad} regression{'s' if bad != 1 else ''} in {len(rows)} metrics", "",
             "| run | notebook | metric | baseline | value | tolerance | status |", "|---|---|---|---|---|---|---|"]
    for row in sorted(rows, key=lambda r: order[r.status]):
        cells = [row.run, row.notebook, row.metric, _show(row.baseline), _show(row.value), row.tolerance, row.status]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    md_path.write_text("\n".join(lines) + "\n")
    return json_path, md_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="only the sets marked fast (what make test runs)")
    parser.add_argument("--only", nargs="+", metavar="ID", help="only these run ids")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "reports", help="where to write the reports")
    parser.add_argument("--update-baselines", action="store_true",
                        help="after reviewing a change: store these runs' metrics as the new baselines")
    args = parser.parse_args(argv)

    try:
        runs, rules = load_plan()
    except (ValueError, KeyError, yaml.YAMLError) as err:
        parser.error(f"{PARAMS.name} cannot be used: {err}")
    if args.only:
        unknown = sorted(set(args.only) - {run.id for run in runs})
        if unknown:
            parser.error(f"unknown run id {', '.join(unknown)}; the ids are in {PARAMS.relative_to(REPO_ROOT)}")
        runs = [run for run in runs if run.id in args.only]
    if args.fast:
        runs = [run for run in runs if run.fast]
    work = args.out / "regression"
    shutil.rmtree(work, ignore_errors=True)  # a fresh artifacts folder: an empty cache, as on a new machine
    print(f"running {len(runs)} notebook runs into {work} ...", flush=True)
    results = execute(runs, work)
    baselines = load_baselines()

    if args.update_baselines:
        failed = [run_id for run_id, metrics in results.items() if FAILED in metrics]
        if failed:
            print(f"not updating the baselines: {', '.join(failed)} failed", file=sys.stderr)
            return 1
        baselines |= {run_id: flatten(metrics) for run_id, metrics in results.items()}
        atomic_write_bytes((json.dumps(baselines, indent=1, sort_keys=True) + "\n").encode(), BASELINES)
        print(f"baselines of {len(results)} runs written to {BASELINES.name}")

    rows = compare(runs, results, baselines, rules)
    json_path, md_path = write_report(rows, args.out)
    regressions = [row for row in rows if row.status == "REGRESSION"]
    new = sum(row.status == "new" for row in rows)
    for row in regressions:
        print("REGRESSION " + row.line(), file=sys.stderr)
    print(f"{len(rows)} metrics from {len(runs)} runs: {len(regressions)} regressions, {new} without a baseline; "
          f"report in {md_path} and {json_path}")
    return 1 if regressions else 0


if __name__ == "__main__":
    raise SystemExit(main())
