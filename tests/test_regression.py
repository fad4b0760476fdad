"""tests/regression/regress.py: the plan, the tolerances, the comparison, and the exit status on a regression."""
from __future__ import annotations

import json
import math

import pytest

from notebook_claims import DEFAULT_RUNS
from notebook_files import NOTEBOOKS
from regression import regress
from regression.regress import FAILED, Run, compare, flatten, load_baselines, load_plan, rule_for, within

RUNS, RULES = load_plan()


def test_every_notebook_has_a_run_with_its_defaults_which_make_test_compares():
    names = sorted(p.stem for p in NOTEBOOKS)
    assert sorted(run.notebook for run in RUNS if run.parameters == {}) == names
    assert sorted(DEFAULT_RUNS) == names, "tests/notebook_claims.py checks each nbval run against these"
    assert all(run.parameters for run in RUNS if run.fast), "a fast set runs a notebook another way than nbval"


def test_every_run_has_a_baseline_and_every_baseline_a_run():
    assert sorted(load_baselines()) == sorted(run.id for run in RUNS)


def test_the_plan_refuses_what_would_run_something_else(tmp_path):
    rules = "tolerances:\n  - {match: '*', kind: exact}\n"
    cases = {
        "repeated: a": "runs:\n  - {id: a, notebook: 00_welcome}\n  - {id: a, notebook: 01_define_net}\n" + rules,
        "notebooks/00_welcom.ipynb, which does not exist": "runs:\n  - {id: a, notebook: 00_welcom}\n" + rules,
        "a tolerance needs match plus one of": "runs: []\ntolerances:\n  - {match: '*', kind: close}\n",
        "each run takes id, notebook, parameters, fast and edition": "runs:\n  - {id: a, notebok: 00_welcome}\n"
                                                                     + rules,
        "run a has edition 'fr'; the lab has en and zh-CN": "runs:\n  - {id: a, notebook: 00_welcome, edition: fr}\n"
                                                             + rules,
    }
    for message, text in cases.items():
        path = tmp_path / "params.yaml"
        path.write_text(text)
        with pytest.raises(ValueError, match=message):
            load_plan(path)


def test_flatten_keeps_dotted_names_apart():
    assert flatten({"half": {"torch.bfloat16": {"file bytes": 3}}, "shots": [5, 20], "ok": True}) == {
        "half/torch.bfloat16/file bytes": 3, "shots/0": 5, "shots/1": 20, "ok": True}


@pytest.mark.parametrize("value, baseline, rule, expected", [
    (0.985, 0.99, {"abs": 0.01}, True), (0.975, 0.99, {"abs": 0.01}, False),
    (105, 100, {"rel": 0.1}, True), (111, 100, {"rel": 0.1}, False),
    (5e-5, 1e-5, {"max": 1e-4}, True), (2e-4, 1e-5, {"max": 1e-4}, False),
    (True, True, {"kind": "exact"}, True), (False, True, {"kind": "exact"}, False),
    (1, True, {"kind": "exact"}, False),  # 1 == True in Python; a flag that became a count is a change
    (250_869, 250_869, {"kind": "exact"}, True), (250_870, 250_869, {"kind": "exact"}, False),
    ("AttributeError: x", "AttributeError: y", {"kind": "exact"}, False),
    (math.nan, 0.5, {"abs": 0.01}, False), ("(missing)", 0.5, {"abs": 0.01}, False),
    (99.0, 1.0, {"kind": "info"}, True),
    # torch's own wording may change with a release; the exception class may not
    ("RuntimeError: Attempting to deserialize object on a CUDA device but torch.cuda.is_available() is False.",
     "RuntimeError: Attempting to deserialize object on a CUDA device; use map_location", {"kind": "error"}, True),
    ("UnpicklingError: Weights only load failed", "RuntimeError: Weights only load failed", {"kind": "error"}, False),
    ("_pickle.UnpicklingError: x", "_pickle.UnpicklingError: y", {"kind": "error"}, True),
    ("\x1b[1;35mAttributeError\x1b[0m: \x1b[35mCan't get attribute 'Net'\x1b[0m", "AttributeError: Can't get",
     {"kind": "error"}, True),  # a child Python 3.13 colours its traceback when FORCE_COLOR is set
    ("\x1b[1;35mRuntimeError\x1b[0m: x", "AttributeError: x", {"kind": "error"}, False),
    ("Missing key(s) in state_dict", "Missing key(s) in state_dict", {"kind": "error"}, False),  # no class recorded
    ("(missing)", "RuntimeError: x", {"kind": "error"}, False),
])
def test_within_says_yes_and_no(value, baseline, rule, expected):
    assert within(value, baseline, rule) is expected


def test_the_rules_give_timings_no_say_and_accuracy_a_tolerance():
    assert rule_for("history/0/seconds", RULES)["kind"] == "info"
    assert rule_for("timings_ms/.safetensors/save ms", RULES)["kind"] == "info"
    assert rule_for("test_acc", RULES) == {"match": "*acc*", "abs": 0.01}
    assert rule_for("variants/everything/largest parameter difference", RULES)["kind"] == "exact"
    assert rule_for("identical_parameters", RULES)["kind"] == "exact"
    for metric in ("errors/case 1", "errors/case 9", "cuda_error", "whole_model_error"):
        assert rule_for(metric, RULES)["kind"] == "error", metric
    assert rule_for("errors/case 10", RULES) == {"match": "errors/case 10", "max": 1.0e-4}
    assert rule_for("errors/case 8/resumed", RULES)["kind"] == "exact"


def test_every_error_baseline_names_its_exception_class():
    """A baseline under an error rule must name the class, or the rule would compare nothing."""
    from regression.regress import error_class, flatten, load_baselines

    checked = 0
    for run_id, metrics in load_baselines().items():
        for metric, value in flatten(metrics).items():
            if rule_for(metric, RULES).get("kind") == "error":
                assert error_class(value), f"{run_id}: {metric} = {value!r} names no exception class"
                checked += 1
    assert checked >= 18, "seven errors in each run of 09, one in each of 03 and 04"


def test_compare_names_the_notebook_metric_baseline_and_value():
    run = Run("02-small", "02_train_mnist")
    baselines = {"02-small": {"test_acc": 0.95, "reload_identical": True, "mistakes": 500, "training_seconds": 5.0}}
    results = {"02-small": {"test_acc": 0.90, "reload_identical": True, "training_seconds": 50.0, "extra": 1}}
    rows = {row.metric: row for row in compare([run], results, baselines, RULES)}
    assert rows["test_acc"].status == "REGRESSION"
    assert rows["test_acc"].line() == "02-small (02_train_mnist): test_acc is 0.9, baseline 0.95 (abs 0.01)"
    assert rows["mistakes"].status == "REGRESSION" and rows["mistakes"].value == "(missing)"
    assert rows["reload_identical"].status == "ok" and rows["training_seconds"].status == "info"
    assert rows["extra"].status == "new"
    failed = compare([run], {"02-small": {FAILED: "AssertionError: boom"}}, baselines, RULES)
    assert [(r.metric, r.status, r.value) for r in failed] == [(FAILED, "REGRESSION", "AssertionError: boom")]


def test_regress_exits_1_on_a_regression_and_writes_the_reports(tmp_path, monkeypatch, capsys):
    plan = tmp_path / "params.yaml"
    plan.write_text("runs:\n  - {id: capstone, notebook: 12_capstone_project, parameters: {KILL_AT_STEP: 71}}\n"
                    "tolerances:\n  - {match: '*seconds*', kind: info}\n  - {match: '*', kind: exact}\n")
    baselines = tmp_path / "baselines.json"
    baselines.write_text(json.dumps({"capstone": {"kill_at_step": 70}}))
    monkeypatch.setattr(regress, "PARAMS", plan)
    monkeypatch.setattr(regress, "BASELINES", baselines)
    assert regress.main(["--out", str(tmp_path / "reports")]) == 1
    err = capsys.readouterr().err
    assert "REGRESSION capstone (12_capstone_project): kill_at_step is 71, baseline 70 (exact)" in err
    rows = json.loads((tmp_path / "reports" / "regression.json").read_text())
    assert {r["metric"]: r["status"] for r in rows}["kill_at_step"] == "REGRESSION"
    assert "| capstone | 12_capstone_project | kill_at_step | 70 | 71 | exact | REGRESSION |" in (
        tmp_path / "reports" / "regression.md").read_text()

    ran = json.loads((tmp_path / "reports" / "regression.json").read_text())
    measured = {"capstone": {r["metric"]: r["value"] for r in ran}}  # the same run again, without the notebook
    monkeypatch.setattr(regress, "execute", lambda runs, folder: json.loads(json.dumps(measured)))
    assert regress.main(["--out", str(tmp_path / "reports"), "--update-baselines"]) == 0  # accept, then clean
    assert json.loads(baselines.read_text())["capstone"]["kill_at_step"] == 71
    assert regress.main(["--out", str(tmp_path / "reports")]) == 0


def test_regress_refuses_an_unknown_run_id(capsys):
    with pytest.raises(SystemExit) as done:
        regress.main(["--only", "nope"])
    assert done.value.code == 2 and "unknown run id nope" in capsys.readouterr().err


def test_a_notebook_that_fails_is_a_regression_with_its_error(tmp_path):
    run = Run("bad-epochs", "02_train_mnist", {"EPOCHS": 0})
    results = regress.execute([run], tmp_path)
    assert "epochs=0 is not allowed" in results["bad-epochs"][FAILED]
    rows = compare([run], results, {"bad-epochs": {"test_acc": 0.99}}, RULES)
    assert [(r.metric, r.status) for r in rows] == [(FAILED, "REGRESSION")]


def test_regress_names_a_broken_plan_instead_of_a_traceback(tmp_path, monkeypatch, capsys):
    plan = tmp_path / "params.yaml"
    plan.write_text("runs:\n  - {id: a, notebook: 00_welcom}\ntolerances: []\n")
    monkeypatch.setattr(regress, "PARAMS", plan)
    with pytest.raises(SystemExit) as done:
        regress.main([])
    err = capsys.readouterr().err
    assert done.value.code == 2 and "params.yaml cannot be used" in err and "00_welcom.ipynb" in err
