"""Notebooks 02 to 00 run with other parameters, alone, in reverse order, on an empty cache.

The chain is executed once per `make test`: from JupyterLab's Run menu by the browser tests where a Chromium is
found (tests/browser/test_lab_in_browser.py runs these very sets and makes the checks below on what they made), with
papermill here otherwise. The runs that must stop with an error run here in every case.
"""
from __future__ import annotations

import papermill
import pytest

from papermill_chains import CHECKS_02_TO_00, browser_runs_the_chain, chain, run_alone

CHAIN, fast_runs = chain("02 to 00")


@pytest.mark.timeout(1800)  # its setup runs the chain's notebooks (each cell bounded by labutils.runner)
@pytest.mark.parametrize("check", CHECKS_02_TO_00, ids=lambda check: check.__name__.removeprefix("the_"))
def test_the_chain(check, request):
    if browser_runs_the_chain(request.session.items):
        pytest.skip("run in JupyterLab and checked there: tests/browser/test_lab_in_browser.py")
    check(request.getfixturevalue("fast_runs"))


def test_a_bad_parameter_stops_the_notebook_with_its_name(tmp_path, monkeypatch, kernel):
    monkeypatch.setenv("LAB_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    monkeypatch.setenv("LAB_METRICS_DIR", str(tmp_path / "metrics"))
    with pytest.raises(papermill.PapermillExecutionError, match="epochs=0 is not allowed"):
        run_alone("02_train_mnist.ipynb", tmp_path, kernel, EPOCHS=0)


def test_the_accuracy_assert_can_fail(tmp_path, monkeypatch, kernel):
    monkeypatch.setenv("LAB_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    monkeypatch.setenv("LAB_METRICS_DIR", str(tmp_path / "metrics"))
    with pytest.raises(papermill.PapermillExecutionError, match="is not above 99.00%"):
        run_alone("02_train_mnist.ipynb", tmp_path, kernel, EPOCHS=1, TRAIN_SUBSET=1000, MIN_TEST_ACCURACY=0.99)
