"""The fast papermill sets that `make test` runs, as two chains that pytest-xdist runs side by side.

tests/regression/params.yaml marks as fast the sets that take a notebook down another path than its defaults,
which nbval runs (and tests/notebook_claims.py checks): 06 stopped before its first checkpoint with its DataLoader
in the main process, and 02 to 00 with another seed and a one-epoch Net (10 with a shorter training, 10-small, runs
in `make regress` only). The tests run them as two chains, 06 (tests/test_papermill_06_08.py) and 02 to 00, each
in that order on its own empty artifacts folder: 02 trains the one-epoch Net and 01 finds it in
the cache, as in a classroom that jumps around. The chain 02 to 00 runs once: in JupyterLab, from the Run menu, where
the browser tests run (tests/browser/test_lab_in_browser.py), else with papermill (tests/test_papermill_02_to_00.py);
its checks, below, hold on what either made. `regress.py --fast` runs them all as one chain.

A chain's notebooks, and its module's bad-parameter runs, share one kernel (tests/conftest.py's `kernel`): each
starts on an empty namespace, and the kernel start and the imports are paid once per module instead of once per
notebook. nbval runs every notebook in a kernel of its own, so a notebook that would only work after another one
still fails the suite; `make regress` gives every notebook its own kernel too.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from labutils.i18n import CHINESE
from labutils.runner import SharedKernel, run_notebook
from notebook_claims import assert_the_baselines_hold
from notebook_files import NOTEBOOK_DIR
from regression.regress import FAILED, execute, load_plan

RUNS, RULES = load_plan()
FAST = [run for run in RUNS if run.fast]
CHAINS = {"06": [run for run in FAST if run.notebook >= "06"],
          "02 to 00": [run for run in FAST if run.notebook < "06"]}


@dataclass
class Made:
    """What a chain's runs made, wherever they ran: {run id: metrics}, the artifacts folder they shared, and
    {run id: the notebook as executed, outputs and all}."""
    results: dict[str, dict]
    artifacts: Path
    executed: dict[str, Path]


def chain(name: str):
    """The runs of chain `name` and a module fixture that runs them, in order, on one empty artifacts folder and
    gives what they made (`Made`); a run that fails fails every test that uses it."""
    runs = CHAINS[name]

    @pytest.fixture(scope="module")
    def fast_runs(tmp_path_factory, kernel) -> Made:
        folder = tmp_path_factory.mktemp("papermill")
        results = execute(runs, folder, kernel=kernel)
        failed = {run_id: m[FAILED] for run_id, m in results.items() if FAILED in m}
        assert not failed, f"notebooks failed: {failed}"
        return Made(results, folder / "artifacts", {run.id: folder / "notebooks" / f"{run.id}.ipynb" for run in runs})

    return runs, fast_runs


def run_alone(name: str, folder: Path, kernel: SharedKernel, **parameters) -> nbformat.NotebookNode:
    """Execute one notebook with papermill into `folder`, in `kernel`; a cell that hangs fails instead of blocking."""
    return run_notebook(NOTEBOOK_DIR / name, folder / name, parameters=parameters, cwd=NOTEBOOK_DIR, kernel=kernel)


def assert_ran_in_chinese(runs, made: Made) -> None:
    """The chain's Chinese runs (`edition: zh-CN`) executed the Chinese notebook, text and all, and its exercise
    checks answered in Chinese: the language switch of its setup cell works in a real kernel."""
    chinese = [run for run in runs if run.edition == "zh-CN"]
    assert chinese, "params.yaml runs a Chinese notebook in this chain"
    for run in chinese:
        nb = nbformat.read(made.executed[run.id], as_version=4)
        assert nb.metadata.get("language") == "zh-CN", f"{run.id} ran {run.path.name}"
        assert CHINESE.search(nb.cells[0].source), f"{run.id}: its text is Chinese"
        said = []
        for cell in nb.cells:
            if cell.cell_type == "code" and "labutils.checks.ex" in cell.source:
                # one message a check; the kernel may split a print's stream into pieces (a lone "\n"), or join two
                text = "".join(output.text for output in cell.outputs if output.output_type == "stream")
                said += [message for message in re.split(r"\n(?=[✓✗⚠])", text.strip()) if message]
        assert said and all(re.match(r"[✓✗] ex\d\d_\d+: ", text) and CHINESE.search(text) for text in said), said


# --- The chain "02 to 00", wherever it ran --------------------------------------------------------------------------
# Where a Chromium is found, the browser tests run these very sets from JupyterLab's Run menu, on their server's empty
# artifacts folder, in this order (tests/browser/test_lab_in_browser.py), and check what they made with the checks
# below; tests/test_papermill_02_to_00.py runs them with papermill only where there is none. Either way each of
# these notebooks is executed once per `make test` with these parameters.

BROWSER_MODULE = "tests/browser/test_lab_in_browser.py"  # skipped as a whole, with no items, without a Chromium


def browser_runs_the_chain(items) -> bool:
    """Whether this session's tests (`items`: request.session.items) run the chain "02 to 00" in JupyterLab: each of
    its runs and its checks in tests/browser/test_lab_in_browser.py. Where they are not all there (no Chromium, or a
    selection with -k, --lf or a list of files), tests/test_papermill_02_to_00.py runs the chain instead."""
    ids = {item.nodeid for item in items}
    runs = {f"{BROWSER_MODULE}::test_notebook_in_jupyterlab[{run.path.stem}]" for run in CHAINS["02 to 00"]}
    return runs <= ids and any(i.startswith(f"{BROWSER_MODULE}::test_the_chain_02_to_00_run_here[") for i in ids)


def the_runs_match_their_baselines(made: Made) -> None:
    timed = frozenset({"run_seconds"})  # papermill's runs add it, the browser's do not; never compared anyway
    results = {run_id: {k: v for k, v in metrics.items() if k not in timed} for run_id, metrics in made.results.items()}
    assert_the_baselines_hold(CHAINS["02 to 00"], results, skip=timed)


def _02(made: Made) -> dict:
    return made.results["02-small"]


def _01(made: Made) -> dict:
    return made.results["01-small"]


def the_02_records_the_run_it_was_asked_for(made: Made) -> None:
    m = _02(made)
    assert m["config"] == {"seed": 1, "epochs": 1, "batch_size": 256, "lr": 0.01, "train_subset": 10_000}
    assert m["train_images"] == 10_000 and [h["epoch"] for h in m["history"]] == [1]
    assert 0.9 < m["test_acc"] < 0.99, "one epoch on 10,000 images: well above chance, below the full run"
    assert m["mistakes"] == round((1 - m["test_acc"]) * 10_000)
    assert m["reload_identical"] is True
    assert 246_824 < m["saved_bytes"] < 260_000  # the weights plus a few KB of structure


def the_02_saved_the_weights_it_measured(made: Made) -> None:
    import torch

    from labutils import Net, evaluate, mnist_tensors

    model = Net()
    model.load_state_dict(torch.load(made.artifacts / "net_mnist.pt", weights_only=True))
    accuracy = evaluate(model, *mnist_tensors(train=False))["accuracy"]
    assert abs(accuracy - _02(made)["test_acc"]) <= 1e-4


def the_01_reuses_the_net_02_trained(made: Made) -> None:
    m01, m02 = _01(made), _02(made)
    assert m01["trained_from_cache"] is True, "02 cached its Net; 01, run after it, must not train again"
    assert m01["trained_config"] == m02["config"]
    assert abs(m01["trained_test_acc"] - m02["test_acc"]) <= 1e-3
    assert m01["parameters"] == 61_706
    cached = list((made.artifacts / "cache").glob("net-*.pt"))
    assert len(cached) == 1, "01 found the Net 02 trained: one cache entry for these parameters"


def the_00_runs_with_other_parameters(made: Made) -> None:
    m = made.results["00-seed-1"]
    assert m["seed"] == 1 and m["data_verified"] is True and sum(m["digit_counts"]) == 60_000


def the_chinese_00_runs_end_to_end_and_its_checks_answer_in_chinese(made: Made) -> None:
    assert_ran_in_chinese(CHAINS["02 to 00"], made)


CHECKS_02_TO_00 = [the_runs_match_their_baselines, the_02_records_the_run_it_was_asked_for,
                   the_02_saved_the_weights_it_measured, the_01_reuses_the_net_02_trained,
                   the_00_runs_with_other_parameters, the_chinese_00_runs_end_to_end_and_its_checks_answer_in_chinese]
