"""What each notebook's default run recorded, checked right after nbval has run it (the `::metrics` item).

nbval runs every notebook with its own parameters, as a learner does. What the notebook passed to
labutils.record_metrics in that run is compared with its `NN-defaults` baseline (tests/regression/params.yaml's
rules), and the claims below, which hold whatever machine it ran on, are asserted on it: the papermill runs of
`make test` then only need the parameter sets that take a notebook down another path (tests/papermill_chains.py).
"""
from __future__ import annotations

import re

from machine import machine
from regression.regress import Run, compare, load_baselines, load_plan

RUNS, RULES = load_plan()
DEFAULT_RUNS = {run.notebook: run for run in RUNS if run.id.endswith("-defaults") and not run.parameters}
NOT_RECORDED_BY_THE_NOTEBOOK = {"run_seconds"}  # regress.py adds it around the run


def assert_the_baselines_hold(runs: list[Run], results: dict[str, dict], skip: frozenset[str] = frozenset()) -> None:
    baselines = {run_id: {m: v for m, v in metrics.items() if m not in skip}
                 for run_id, metrics in load_baselines().items()}
    rows = compare(runs, results, baselines, RULES)
    regressions = [row.line() for row in rows if row.status == "REGRESSION"]
    assert not regressions, "\n".join(regressions)
    new = [f"{row.run}: {row.metric}" for row in rows if row.status == "new"]
    assert not new, f"metrics without a baseline (review, then regress.py --update-baselines): {new}"


def raised(error: str) -> str:
    """The class of a recorded error ("RuntimeError: ..."): the claims assert it, the lab's names and files, and
    never torch's or Python's wording, which a new version may change (each notebook asserts what it teaches)."""
    return error.split(":", 1)[0].strip()


def claims_03(m: dict) -> None:
    assert m["parameters"] == 61_706 and m["parameter_bytes"] == 246_824
    assert m["safetensors_bytes"] < m["state_dict_bytes"] < m["parameter_bytes"] + 8_000, "a few KB of structure"
    assert m["torch_save_survived_full_disk"] is False, "torch_save_survived_full_disk: torch.save over the file"
    assert m["save_checkpoint_survived_full_disk"] is True, "save_checkpoint_survived_full_disk"
    assert raised(m["whole_model_error"]) == "AttributeError" and re.search(r"\bNet\b", m["whole_model_error"]), \
        f"whole_model_error: unpickling needs the class Net: {m['whole_model_error']}"
    assert "timings_ms" not in m, "03 measures sizes only; speed is notebook 08's subject"


def claims_04(m: dict) -> None:
    assert m["round_trip_identical"] is True and m["test_acc"] > 0.985, "the default Net, trained by 02 or the cache"
    assert m["bn_train_mode_sorted_acc"] < m["bn_eval_acc"] - 0.03
    assert m["changed_code_acc"] < 0.2, "changed_code_acc: the weights in a changed class"
    assert m["preprocessing_acc"]["as saved in the metadata"] == m["test_acc"], "preprocessing_acc from the metadata"
    assert raised(m["cuda_error"]) == "RuntimeError", f"cuda_error: a CUDA file on a CPU-only load: {m['cuda_error']}"
    assert m["canary_after_weights_only"] is False and m["canary_after_unsafe_load"] is True


def claims_05(m: dict) -> None:
    assert m["shots"] == [5, 20, 100] and set(m["transfer"]) == {"from scratch", "conv frozen", "conv fine-tuned"}
    assert all(len(samples) == 3 for by_shots in m["transfer"].values() for samples in by_shots.values())
    assert m["silent_strict_false_acc"] < 0.2 and m["part_bytes"] < 0.06 * m["full_bytes"]
    gains = m["transfer_gain_at_smallest"]
    assert gains["conv frozen"] > 0 and gains["conv fine-tuned"] > 0, f"pretrained conv layers help: {gains}"
    assert len(m["picker"]) == 3


def claims_07(m: dict) -> None:
    assert m["test_acc"] > 0.985
    assert m["export_identical"] and m["folder_identical"] and m["onnx_same_classes"]
    assert m["pt2_ran_planted_code"] is True, "torch.export.load unpickled a planted pickle without weights_only"
    assert m["onnx_max_abs_difference"] < 1e-4 and len(m["predictor_answers"]) == 8
    assert all(answer[0].endswith(f"_label_{answer[1]}.png") for answer in m["predictor_answers"]), \
        "the predictor names each file's own digit"
    assert set(m["formats"]) == {"state_dict .pt", "whole model pickle .pt", "torch.export .pt2", "ONNX .onnx",
                                 "model folder (safetensors)"}


def claims_08(m: dict) -> None:
    assert m["weights_bytes"] == 246_824 and m["adam_state_bytes"] > 2 * m["weights_bytes"], "2 moments"
    assert m["rss_model_bytes"] < 257 * 2**20 and m["shards"] >= 2 and m["dcp_processes"] == 2
    assert m["dcp_resharded_equal"] and m["dcp_async_equal"], "one process loads what two saved; the async save too"
    assert m["dcp_fsdp_restored"], "FSDP2 model and Adam state back through get_state_dict, DCP and set_state_dict"
    peak = m["peak_over_weights"]
    # bounds that depend on the machine (allocator, page cache, Python's first-load pages): a breach names it
    seen = f"peak over the weights {peak}, {m['rss_model_bytes'] / 2**20:.0f} MiB of weights; {machine()}"
    assert peak["naive"] >= 1.8 and peak["mmap"] >= 1.8, f"a plain load holds the weights twice: {seen}"
    assert peak["meta + assign"] <= 1.2 and peak["meta + mmap + assign"] <= 1.2, f"meta + assign hold them once: {seen}"
    assert m["torch_load_ignored_a_bad_crc32"] and m["save_checkpoint_crcs"] == [0], "the sha256 covers the file"
    half = m["half_precision"]
    assert half["torch.bfloat16"]["file bytes"] < 0.52 * half["torch.float32"]["file bytes"], "half the bytes"
    assert abs(half["torch.bfloat16"]["test accuracy"] - half["torch.float32"]["test accuracy"]) < 0.005


def claims_09(m: dict) -> None:
    assert m["test_acc"] > 0.985
    errors = m["errors"]
    assert sorted(errors) == sorted(f"case {n}" for n in range(1, 11)), "every case of the clinic ran"
    assert "running_mean" in errors["case 1"] and "TinyNet" in errors["case 9"], "the key and the class, named"
    assert raised(errors["case 2"]) == "RuntimeError", f"case 2, a CUDA file on a CPU-only load: {errors['case 2']}"
    preparations = dict(errors["case 3"])
    assert preparations.pop("as in training: x / 255, then (x - 0.1307) / 0.3081") == m["test_acc"]
    assert len(preparations) == 3 and all(acc < m["test_acc"] for acc in preparations.values())
    assert errors["case 10"] < 1e-4


def claims_10(m: dict) -> None:
    assert m["adder_acc"] >= 0.95 and m["lora_sums_without_adapter_acc"] == m["adder_acc"], "the adapter disabled"
    assert sorted(m["folder_bytes"]) == ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
                                         "tokenizer_config.json"]
    assert m["shards"] > 1 and "config.json" in m["config_error"]
    assert m["tokenizer_guessed_vocabulary"] == 0 and m["tokenizer_guessed_warnings"] == 0, "a silent empty tokenizer"
    assert m["bf16_weight_bytes"] * 2 == 4 * m["parameters"], "bfloat16 halves the weights"
    assert m["bf16_largest_relative_change"] <= 2 ** -8, "bfloat16 moves a weight by at most 2^-8 of its value"
    assert m["lora_trainable"] < 0.05 * m["parameters"]
    assert m["adapter_bytes"] < 0.05 * m["folder_bytes"]["model.safetensors"], "the adapter: a few percent"
    assert m["lora_subtract_acc"] > 0.85 > 0.2 > m["lora_before_acc"]
    assert m["adapter_fresh_process_same"] is True and m["merged_answers_changed"] <= 5
    assert m["trainer_resume_exact"] is True
    differs = {"complete": False, "without rng_state.pth": True, "without optimizer.pt": True,
               "without scheduler.pt": True, "ignore_data_skip=True": True}
    assert m["trainer_variant_differs"] == differs, "every missing piece changes the resume"
    assert m["trainer_resume_warnings_same"] is True, "no variant warns of what it lacks"


def claims_11(m: dict) -> None:
    assert {"state_dict", "optimizer_states", "lr_schedulers", "epoch", "global_step", "hyper_parameters"} <= set(
        m["ckpt_keys"]) and not [k for k in m["ckpt_keys"] if "rng" in k or "random" in k], "a .ckpt holds no RNG"
    assert m["lightning_best"] in m["lightning_kept"], "ModelCheckpoint keeps its best file"
    assert m["resume_difference"]["DistributedSampler(seed=SEED)"] == 0 < m["resume_difference"][
        "shuffle=True, seeded generator"], "fit(ckpt_path=...) is exact only with an order drawn from seed and epoch"
    assert [line.split(":")[0] for line in m["ddp_writes"]] == ["rank 0", "rank 0"], "under DDP only rank 0 writes"
    assert m["accelerate_same_batches"] is True and m["accelerate_largest_difference"] == 0, "skip_first_batches"
    assert m["trainer_left_at_limit_1"] == [m["trainer_best"]], "save_total_limit=1 keeps the best, not the newest"


def claims_12(m: dict) -> None:
    """As it ships: no step solved, so every part that runs the steps waited (tests/test_capstone.py runs it solved)."""
    assert m["passed"] == {f"ex12_{n}": False for n in range(1, 6)} and m["total_steps"] == 126
    assert m["resumed_from_step"] is None and m["identical"] is None and m["shared_loaded_without_labutils"] is None


CLAIMS = {"03_saving": claims_03, "04_loading": claims_04, "05_partial_loading": claims_05,
          "07_deploy_and_share": claims_07, "08_large_models": claims_08, "09_troubleshooting_clinic": claims_09,
          "10_language_model": claims_10, "11_frameworks": claims_11,
          "12_capstone_project": claims_12}


def check_default_run(notebook: str, metrics: dict) -> None:
    """Compare the metrics of `notebook`'s default run with its baseline, then assert its claims."""
    run = DEFAULT_RUNS[notebook]
    assert_the_baselines_hold([run], {run.id: metrics}, skip=frozenset(NOT_RECORDED_BY_THE_NOTEBOOK))
    if notebook in CLAIMS:
        CLAIMS[notebook](metrics)
