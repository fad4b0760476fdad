"""The fast papermill sets that `make test` runs, as two chains that pytest-xdist runs side by side.

tests/regression/params.yaml marks as fast the sets that take a notebook down another path than its defaults,
which nbval runs (and tests/notebook_claims.py checks): 10 with a shorter training and its Trainer interrupted at
another checkpoint, 06 stopped before its first checkpoint with its DataLoader in the main process, and 02 to 00
with another seed and a one-epoch Net. The tests run them as two chains, 10 and 06 (tests/test_papermill_06_08.py)
and 02 to 00 (tests/test_papermill_02_to_00.py), each in that order
on its own empty artifacts folder: 02 trains the one-epoch Net and 01 finds it in the cache, as in a classroom
that jumps around. `regress.py --fast` runs them as one chain.

A chain's notebooks, and its module's bad-parameter runs, share one kernel (tests/conftest.py's `kernel`): each
starts on an empty namespace, and the kernel start and the imports are paid once per module instead of once per
notebook. nbval runs every notebook in a kernel of its own, so a notebook that would only work after another one
still fails the suite; `make regress` gives every notebook its own kernel too.
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from labutils.i18n import CHINESE
from labutils.runner import SharedKernel, run_notebook
from notebook_files import NOTEBOOK_DIR
from regression.regress import FAILED, execute, load_plan

RUNS, RULES = load_plan()
FAST = [run for run in RUNS if run.fast]
CHAINS = {"10 and 06": [run for run in FAST if run.notebook >= "06"],
          "02 to 00": [run for run in FAST if run.notebook < "06"]}


def chain(name: str):
    """The runs of chain `name` and a module fixture that runs them, in order, on one empty artifacts folder and
    gives ({run id: metrics}, the folder); a run that fails fails every test that uses it."""
    runs = CHAINS[name]

    @pytest.fixture(scope="module")
    def fast_runs(tmp_path_factory, kernel) -> tuple[dict[str, dict], Path]:
        folder = tmp_path_factory.mktemp("papermill")
        results = execute(runs, folder, kernel=kernel)
        failed = {run_id: m[FAILED] for run_id, m in results.items() if FAILED in m}
        assert not failed, f"notebooks failed: {failed}"
        return results, folder

    return runs, fast_runs


def run_alone(name: str, folder: Path, kernel: SharedKernel, **parameters) -> nbformat.NotebookNode:
    """Execute one notebook with papermill into `folder`, in `kernel`; a cell that hangs fails instead of blocking."""
    return run_notebook(NOTEBOOK_DIR / name, folder / name, parameters=parameters, cwd=NOTEBOOK_DIR, kernel=kernel)


def assert_ran_in_chinese(runs, folder: Path) -> None:
    """The chain's Chinese runs (`edition: zh-CN`) executed the Chinese notebook, text and all, and its exercise
    checks answered in Chinese: the language switch of its setup cell works in a real kernel."""
    chinese = [run for run in runs if run.edition == "zh-CN"]
    assert chinese, "params.yaml runs a Chinese notebook in this chain"
    for run in chinese:
        nb = nbformat.read(folder / "notebooks" / f"{run.id}.ipynb", as_version=4)
        assert nb.metadata.get("language") == "zh-CN", f"{run.id} ran {run.path.name}"
        assert CHINESE.search(nb.cells[0].source), f"{run.id}: its text is Chinese"
        said = [output.text for cell in nb.cells if cell.cell_type == "code" and "labutils.checks.ex" in cell.source
                for output in cell.outputs if output.output_type == "stream"]
        assert said and all(re.match(r"[✓✗] ex\d\d_\d+: ", text) and CHINESE.search(text) for text in said), said
