"""Notebooks 05 to 00 run with other parameters, alone, in reverse order, on an empty cache (papermill)."""
from __future__ import annotations

import papermill
import pytest
import torch

from labutils import Net, evaluate, mnist_tensors
from papermill_chains import assert_the_baselines_hold, chain, run_alone

CHAIN, fast_runs = chain("05 to 00")


def _metrics(fast_runs, run_id: str) -> dict:
    return fast_runs[0][run_id]


@pytest.mark.timeout(1800)  # its setup runs the chain's notebooks (each cell bounded by labutils.runner)
def test_the_runs_match_their_baselines(fast_runs):
    assert_the_baselines_hold(CHAIN, fast_runs[0])


def test_05_measured_transfer_with_its_parameters(fast_runs):
    m = _metrics(fast_runs, "05-small")
    assert m["shots"] == [5, 20] and set(m["transfer"]) == {"from scratch", "conv frozen", "conv fine-tuned"}
    assert all(len(samples) == 2 for by_shots in m["transfer"].values() for samples in by_shots.values())
    assert m["silent_strict_false_acc"] < 0.2 and m["part_bytes"] < 0.06 * m["full_bytes"]
    gains = m["transfer_gain_at_smallest"]
    assert gains["conv frozen"] > 0 and gains["conv fine-tuned"] > 0, gains
    assert len(m["picker"]) == 3


def test_04_proved_each_claim_on_the_net_05_trained(fast_runs):
    m = _metrics(fast_runs, "04-small")
    assert m["round_trip_identical"] is True
    assert 0.9 < m["test_acc"] < 0.99, "the one-epoch Net that 05 trained on an empty cache"
    assert m["bn_train_mode_sorted_acc"] < m["bn_eval_acc"] - 0.03
    assert m["changed_code_acc"] < 0.2 and m["preprocessing_acc"]["as saved in the metadata"] == m["test_acc"]
    assert "torch.cuda.is_available() is False" in m["cuda_error"]
    assert m["canary_after_weights_only"] is False and m["canary_after_unsafe_load"] is True


def test_03_reused_the_cached_net(fast_runs):
    m03, m04 = _metrics(fast_runs, "03-small"), _metrics(fast_runs, "04-small")
    assert m03["parameters"] == 61_706 and m03["parameter_bytes"] == 246_824
    assert m03["safetensors_bytes"] < m03["state_dict_bytes"] < m03["parameter_bytes"] + 8_000
    assert m03["torch_save_survived_full_disk"] is False and m03["save_checkpoint_survived_full_disk"] is True
    assert "Can't get attribute 'Net'" in m03["whole_model_error"]
    assert set(m03["timings_ms"]) == {"state_dict .pt", "full checkpoint .pt", ".safetensors", "save_checkpoint .pt"}
    cached = list((fast_runs[1] / "artifacts" / "cache").glob("net-*.pt"))
    assert len(cached) == 1, "the notebooks after 05 found the Net it trained: one cache entry for these parameters"
    assert m04["test_acc"] > 0.9


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
