"""Notebooks 09 to 06 run with other parameters, alone, in reverse order, on an empty cache (papermill)."""
from __future__ import annotations

import papermill
import pytest

from papermill_chains import CHAINS, FAST, assert_the_baselines_hold, chain, run_alone

CHAIN, fast_runs = chain("09 to 06")


def _metrics(fast_runs, run_id: str) -> dict:
    return fast_runs[0][run_id]


def test_the_two_chains_run_every_fast_set_once_in_the_order_of_params_yaml():
    chained = [run for runs in CHAINS.values() for run in runs]
    assert chained == FAST and len({run.id for run in chained}) == len(FAST)
    assert all(runs and runs[0].notebook > runs[-1].notebook for runs in CHAINS.values()), "reverse order"


@pytest.mark.timeout(1800)  # its setup runs the chain's notebooks (each cell bounded by labutils.runner)
def test_the_runs_match_their_baselines(fast_runs):
    assert_the_baselines_hold(CHAIN, fast_runs[0])


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
def test_08_refuses_a_bad_parameter_by_name(tmp_path, monkeypatch, kernel, parameter, message):
    monkeypatch.setenv("LAB_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    monkeypatch.setenv("LAB_METRICS_DIR", str(tmp_path / "metrics"))
    with pytest.raises(papermill.PapermillExecutionError, match=message):
        run_alone("08_large_models.ipynb", tmp_path, kernel, **parameter)


@pytest.mark.parametrize("run", [run for run in CHAIN if run.notebook == "06_resume_training"], ids=lambda r: r.id)
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
    runs = [run.parameters for run in CHAIN if run.notebook == "06_resume_training"]
    assert any(p["INTERRUPT_STEP"] < p["CHECKPOINT_EVERY"] for p in runs)


def test_06_rejects_an_interrupt_step_outside_the_run(tmp_path, monkeypatch, kernel):
    monkeypatch.setenv("LAB_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    monkeypatch.setenv("LAB_METRICS_DIR", str(tmp_path / "metrics"))
    with pytest.raises(papermill.PapermillExecutionError,
                       match="INTERRUPT_STEP=0 must lie between 1 and the last step, 188"):
        run_alone("06_resume_training.ipynb", tmp_path, kernel, INTERRUPT_STEP=0)
