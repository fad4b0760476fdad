"""Notebooks run with other parameters, alone, in reverse order, on an empty cache (papermill): the fast set."""
from __future__ import annotations

import papermill
import pytest
import torch

from labutils import Net, evaluate, mnist_tensors
from labutils.runner import run_notebook
from notebook_files import NOTEBOOK_DIR
from regression.regress import FAILED, compare, execute, load_baselines, load_plan

RUNS, RULES = load_plan()
FAST = [run for run in RUNS if run.fast]  # tests/regression/params.yaml: reverse order, then 00 last


def _run(name: str, folder, **parameters):
    """Execute a notebook with papermill into `folder`; a cell that hangs fails instead of blocking."""
    return run_notebook(NOTEBOOK_DIR / name, folder / name, parameters=parameters, cwd=NOTEBOOK_DIR)


@pytest.fixture(scope="module")
def fast_runs(tmp_path_factory):
    """The fast regression runs, in order, on one empty artifacts folder: {run id: metrics}, and the folder."""
    folder = tmp_path_factory.mktemp("papermill")
    results = execute(FAST, folder)
    failed = {run_id: m[FAILED] for run_id, m in results.items() if FAILED in m}
    assert not failed, f"notebooks failed: {failed}"
    return results, folder


def _metrics(fast_runs, run_id: str) -> dict:
    return fast_runs[0][run_id]


@pytest.mark.timeout(3600)  # its setup runs the 11 fast notebooks (each cell bounded by labutils.runner)
def test_the_fast_runs_match_their_baselines(fast_runs):
    rows = compare(FAST, fast_runs[0], load_baselines(), RULES)
    regressions = [row.line() for row in rows if row.status == "REGRESSION"]
    assert not regressions, "\n".join(regressions)
    new = [f"{row.run}: {row.metric}" for row in rows if row.status == "new"]
    assert not new, f"metrics without a baseline (review, then regress.py --update-baselines): {new}"


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


def test_07_deployed_the_small_net_with_parity(fast_runs):
    m = _metrics(fast_runs, "07-small")
    assert 0.9 < m["test_acc"] < 0.99, "09 ran first on an empty cache: it trained the one-epoch Net, 07 reused it"
    assert m["export_identical"] and m["folder_identical"] and m["onnx_same_classes"]
    assert m["onnx_max_abs_difference"] < 1e-4 and len(m["predictor_answers"]) == 3
    assert set(m["formats"]) == {"state_dict .pt", "whole model pickle .pt", "torch.export .pt2", "ONNX .onnx",
                                 "model folder (safetensors)"}


def test_08_scaled_down_and_resharded_three_ways(fast_runs):
    m8, m7 = _metrics(fast_runs, "08-small-three-processes"), _metrics(fast_runs, "07-small")
    assert m8["test_acc"] == pytest.approx(m7["test_acc"], abs=1e-6), "08 and 07 took the Net 09 trained from the cache"
    assert m8["rss_model_bytes"] < 80 * 2**20 and m8["shards"] == 2 and m8["dcp_processes"] == 3
    assert m8["dcp_resharded_equal"] and m8["dcp_async_equal"]
    peak = m8["peak_over_weights"]
    assert peak["naive"] >= 1.8 and peak["meta + mmap + assign"] <= 1.2
    half = m8["half_precision"]
    assert half["torch.bfloat16"]["file bytes"] < 0.52 * half["torch.float32"]["file bytes"]


def test_09_showed_every_error_with_the_small_net(fast_runs):
    m9, m7 = _metrics(fast_runs, "09-small"), _metrics(fast_runs, "07-small")
    assert m9["test_acc"] == m7["test_acc"] and 0.9 < m9["test_acc"] < 0.99
    errors = m9["errors"]
    assert sorted(errors) == sorted(f"case {n}" for n in range(1, 11))
    assert "running_mean" in errors["case 1"] and "CUDA device" in errors["case 2"] and "TinyNet" in errors["case 9"]
    preparations = errors["case 3"]
    assert preparations.pop("as in training: x / 255, then (x - 0.1307) / 0.3081") == m9["test_acc"]
    assert len(preparations) == 3 and all(acc < m9["test_acc"] for acc in preparations.values())
    assert errors["case 10"] < 1e-4


@pytest.mark.parametrize("parameter, message", [({"DCP_PROCESSES": 0}, "DCP_PROCESSES=0 is not allowed"),
                                                ({"MAX_SHARD_SIZE": "1GB"}, "MAX_SHARD_SIZE='1GB' is not allowed")])
def test_08_refuses_a_bad_parameter_by_name(tmp_path, monkeypatch, parameter, message):
    monkeypatch.setenv("LAB_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    monkeypatch.setenv("LAB_METRICS_DIR", str(tmp_path / "metrics"))
    with pytest.raises(papermill.PapermillExecutionError, match=message):
        _run("08_large_models.ipynb", tmp_path, **parameter)


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
    assert 0.9 < m["test_acc"] < 0.99, "the one-epoch Net that 09 trained on an empty cache"
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
    assert len(cached) == 1, "the notebooks after 09 found the Net it trained: one cache entry for these parameters"
    assert m04["test_acc"] > 0.9


def test_01_reuses_the_net_02_trained(fast_runs):
    m01, m02 = _metrics(fast_runs, "01-small"), _metrics(fast_runs, "02-small")
    assert m01["trained_from_cache"] is True, "02 cached its Net; 01, run after it, must not train again"
    assert m01["trained_config"] == m02["config"]
    assert abs(m01["trained_test_acc"] - m02["test_acc"]) <= 1e-3
    assert m01["parameters"] == 61_706


def test_00_runs_with_other_parameters(fast_runs):
    m = _metrics(fast_runs, "00-seed-1")
    assert m["seed"] == 1 and m["data_verified"] is True and sum(m["digit_counts"]) == 60_000


@pytest.mark.parametrize("run", [run for run in FAST if run.notebook == "06_resume_training"], ids=lambda r: r.id)
def test_06_resumes_exactly_from_other_interrupt_points(fast_runs, run):
    """Stopped at the epoch boundary, and before the first checkpoint (nothing to resume: the run starts over)."""
    m, parameters = _metrics(fast_runs, run.id), run.parameters
    every, interrupt = parameters["CHECKPOINT_EVERY"], parameters["INTERRUPT_STEP"]
    assert m["interrupt_step"] == interrupt and m["checkpoint_every"] == every
    assert m["resumed_from_step"] == max(interrupt // every * every, interrupt // 94 * 94)
    assert m["resumed_from_step_after_sigterm"] == interrupt and m["sigterm_exit_status"] == 143
    assert m["total_steps"] == 94 * parameters.get("EPOCHS", 2)
    assert m["identical_parameters"] and m["identical_optimizer"] and m["identical_history"]
    assert set(m["identical"]) == {"SIGTERM", "SIGKILL"}
    assert all(all(column.values()) for column in m["identical"].values())
    assert m["variants"]["everything"]["largest parameter difference"] == 0
    assert all(v["largest parameter difference"] > 0 for name, v in m["variants"].items() if name != "everything")


def test_the_fast_runs_cover_a_stop_before_the_first_checkpoint():
    runs = [run.parameters for run in FAST if run.notebook == "06_resume_training"]
    assert any(p["INTERRUPT_STEP"] < p["CHECKPOINT_EVERY"] for p in runs)


def test_06_rejects_an_interrupt_step_outside_the_run(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    monkeypatch.setenv("LAB_METRICS_DIR", str(tmp_path / "metrics"))
    with pytest.raises(papermill.PapermillExecutionError,
                       match="INTERRUPT_STEP=0 must lie between 1 and the last step, 188"):
        _run("06_resume_training.ipynb", tmp_path, INTERRUPT_STEP=0)


def test_a_bad_parameter_stops_the_notebook_with_its_name(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    monkeypatch.setenv("LAB_METRICS_DIR", str(tmp_path / "metrics"))
    with pytest.raises(papermill.PapermillExecutionError, match="epochs=0 is not allowed"):
        _run("02_train_mnist.ipynb", tmp_path, EPOCHS=0)


def test_the_accuracy_assert_can_fail(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    monkeypatch.setenv("LAB_METRICS_DIR", str(tmp_path / "metrics"))
    with pytest.raises(papermill.PapermillExecutionError, match="is not above 99.00%"):
        _run("02_train_mnist.ipynb", tmp_path, EPOCHS=1, TRAIN_SUBSET=1000, MIN_TEST_ACCURACY=0.99)
