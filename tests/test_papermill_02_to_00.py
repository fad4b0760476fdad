"""Notebooks 02 to 00 run with other parameters, alone, in reverse order, on an empty cache (papermill)."""
from __future__ import annotations

import papermill
import pytest
import torch

from labutils import Net, evaluate, mnist_tensors
from notebook_claims import assert_the_baselines_hold
from papermill_chains import assert_ran_in_chinese, chain, run_alone

CHAIN, fast_runs = chain("02 to 00")


def _metrics(fast_runs, run_id: str) -> dict:
    return fast_runs[0][run_id]


@pytest.mark.timeout(1800)  # its setup runs the chain's notebooks (each cell bounded by labutils.runner)
def test_the_runs_match_their_baselines(fast_runs):
    assert_the_baselines_hold(CHAIN, fast_runs[0])


def test_02_records_the_run_it_was_asked_for(fast_runs):
    m = _metrics(fast_runs, "02-small")
    assert m["config"] == {"seed": 1, "epochs": 1, "batch_size": 256, "lr": 0.01, "train_subset": 10_000}
    assert m["train_images"] == 10_000 and [h["epoch"] for h in m["history"]] == [1]
    assert 0.9 < m["test_acc"] < 0.99, "one epoch on 10,000 images: well above chance, below the full run"
    assert m["mistakes"] == round((1 - m["test_acc"]) * 10_000)
    assert m["reload_identical"] is True
    assert 246_824 < m["saved_bytes"] < 260_000  # the weights plus a few KB of structure


def test_02_saved_the_weights_it_measured(fast_runs):
    model = Net()
    model.load_state_dict(torch.load(fast_runs[1] / "artifacts" / "net_mnist.pt", weights_only=True))
    accuracy = evaluate(model, *mnist_tensors(train=False))["accuracy"]
    assert abs(accuracy - _metrics(fast_runs, "02-small")["test_acc"]) <= 1e-4


def test_01_reuses_the_net_02_trained(fast_runs):
    m01, m02 = _metrics(fast_runs, "01-small"), _metrics(fast_runs, "02-small")
    assert m01["trained_from_cache"] is True, "02 cached its Net; 01, run after it, must not train again"
    assert m01["trained_config"] == m02["config"]
    assert abs(m01["trained_test_acc"] - m02["test_acc"]) <= 1e-3
    assert m01["parameters"] == 61_706
    cached = list((fast_runs[1] / "artifacts" / "cache").glob("net-*.pt"))
    assert len(cached) == 1, "01 found the Net 02 trained: one cache entry for these parameters"


def test_00_runs_with_other_parameters(fast_runs):
    m = _metrics(fast_runs, "00-seed-1")
    assert m["seed"] == 1 and m["data_verified"] is True and sum(m["digit_counts"]) == 60_000


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


def test_the_chinese_00_runs_end_to_end_and_its_checks_answer_in_chinese(fast_runs):
    assert_ran_in_chinese(CHAIN, fast_runs[1])
