"""The chain of 06 (papermill): 06 stopped before its first checkpoint on an empty cache; and 06, 08 and 10 refusing
bad parameters. (10 with a shorter training and its Trainer interrupted at another checkpoint, 10-small, is a set of
`make regress`, which compares everything it records with its baseline.)"""
from __future__ import annotations

import papermill
import pytest

from notebook_claims import assert_the_baselines_hold
from papermill_chains import assert_ran_in_chinese, CHAINS, FAST, RUNS, chain, run_alone
from regression.regress import load_baselines

CHAIN, fast_runs = chain("06")


def _refuses(notebook: str, message: str, tmp_path, monkeypatch, kernel, **parameters) -> None:
    """Run `notebook` with bad `parameters` on its own folders: it must stop with an error that says `message`."""
    monkeypatch.setenv("LAB_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    monkeypatch.setenv("LAB_METRICS_DIR", str(tmp_path / "metrics"))
    with pytest.raises(papermill.PapermillExecutionError, match=message):
        run_alone(notebook, tmp_path, kernel, **parameters)


def _metrics(fast_runs, run_id: str) -> dict:
    return fast_runs.results[run_id]


def test_the_two_chains_run_every_fast_set_once_in_the_order_of_params_yaml():
    chained = [run for runs in CHAINS.values() for run in runs]
    assert chained == FAST and len({run.id for run in chained}) == len(FAST)
    assert all(runs and runs[0].notebook >= runs[-1].notebook for runs in CHAINS.values()), "reverse order"


@pytest.mark.timeout(1800)  # its setup runs the chain's notebooks (each cell bounded by labutils.runner)
def test_the_runs_match_their_baselines(fast_runs):
    assert_the_baselines_hold(CHAIN, fast_runs.results)


@pytest.mark.parametrize("parameter, message", [({"DCP_PROCESSES": 0}, "DCP_PROCESSES=0 is not allowed"),
                                                ({"MAX_SHARD_SIZE": "1GB"}, "MAX_SHARD_SIZE='1GB' is not allowed")])
def test_08_refuses_a_bad_parameter_by_name(tmp_path, monkeypatch, kernel, parameter, message):
    _refuses("08_large_models.ipynb", message, tmp_path, monkeypatch, kernel, **parameter)


@pytest.mark.parametrize("run", [run for run in CHAIN if run.notebook == "06_resume_training"], ids=lambda r: r.id)
def test_06_resumes_exactly_from_another_interrupt_point(fast_runs, run):
    """Stopped before the first checkpoint: nothing to resume, the run starts over (`make regress` also stops it at
    the epoch boundary and late in the second epoch)."""
    m, parameters = _metrics(fast_runs, run.id), run.parameters
    every, interrupt = parameters["CHECKPOINT_EVERY"], parameters["INTERRUPT_STEP"]
    assert m["interrupt_step"] == interrupt and m["checkpoint_every"] == every
    assert m["resumed_from_step"] == max(interrupt // every * every, interrupt // 94 * 94) == 0
    assert m["resumed_from_step_after_sigterm"] == interrupt and m["sigterm_exit_status"] == 143
    assert m["total_steps"] == 94 * parameters.get("EPOCHS", 2) and m["num_workers"] == parameters["NUM_WORKERS"]
    assert m["identical_parameters"] and m["identical_optimizer"] and m["identical_history"]
    assert set(m["identical"]) == {"SIGTERM", "SIGKILL"}
    assert all(all(column.values()) for column in m["identical"].values())
    assert m["variants"]["everything"]["largest parameter difference"] == 0
    assert all(v["largest parameter difference"] > 0 for name, v in m["variants"].items() if name != "everything")


def test_10_small_is_left_to_make_regress_whose_baseline_holds_what_it_proves():
    """10-small costs 49 s of one worker; make regress runs it and compares every metric with its baseline, which
    says what this module asserted of it when make test ran it: the Trainer resumed exactly from another checkpoint,
    each missing piece changes the resume, 100 KB shards, the accuracies above their floors."""
    small = {run.id: run for run in RUNS}["10-small"]
    assert not small.fast and small not in FAST
    assert small.parameters["INTERRUPT_AT"] != 40 and small.parameters["MAX_SHARD_SIZE"] != "200KB"
    baseline = load_baselines()["10-small"]
    assert baseline["trainer_resume_exact"] is True and baseline["adapter_fresh_process_same"] is True
    assert {k.split("/", 1)[1]: v for k, v in baseline.items() if k.startswith("trainer_variant_differs/")} == {
        "complete": False, "without rng_state.pth": True, "without optimizer.pt": True, "without scheduler.pt": True,
        "ignore_data_skip=True": True}
    assert baseline["shards"] >= 4 and baseline["adder_acc"] >= small.parameters["MIN_ACCURACY"]
    assert baseline["lora_subtract_acc"] > baseline["lora_before_acc"]


def test_10_refuses_an_interrupt_point_without_a_checkpoint(tmp_path, monkeypatch, kernel):
    _refuses("10_language_model.ipynb", "INTERRUPT_AT=50 is not allowed: it must be a multiple of SAVE_EVERY=20",
             tmp_path, monkeypatch, kernel, INTERRUPT_AT=50)


def test_the_fast_runs_cover_a_stop_before_the_first_checkpoint():
    runs = [run.parameters for run in CHAIN if run.notebook == "06_resume_training"]
    assert any(p["INTERRUPT_STEP"] < p["CHECKPOINT_EVERY"] for p in runs)


def test_06_rejects_an_interrupt_step_outside_the_run(tmp_path, monkeypatch, kernel):
    _refuses("06_resume_training.ipynb", "INTERRUPT_STEP=0 must lie between 1 and the last step, 188",
             tmp_path, monkeypatch, kernel, INTERRUPT_STEP=0)


def test_the_chinese_06_runs_end_to_end_and_its_checks_answer_in_chinese(fast_runs):
    assert_ran_in_chinese(CHAIN, fast_runs)
