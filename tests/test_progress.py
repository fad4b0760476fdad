"""`python -m labutils progress` on a made-up room: solved, wrong, untouched, corrupt, foreign and missing copies."""
from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys

import pytest

from labutils import progress
from notebook_files import NOTEBOOKS
from labutils.paths import REPO_ROOT

LAB = REPO_ROOT / "notebooks"
SOLUTIONS = LAB / "solutions"
EXERCISES = len(list(SOLUTIONS.glob("ex*.py")))  # one solution per exercise (tests/test_exercises.py checks it)


def _notebook(name: str) -> dict:
    return json.loads((LAB / name).read_text(encoding="utf-8"))


def _answer(nb: dict, exercise: str, code: str, printed: str | None) -> None:
    """Put `code` in the exercise cell and `printed` as the saved output of its check cell (None: never ran)."""
    cells = nb["cells"]
    index = next(i for i, c in enumerate(cells) if exercise in c["metadata"].get("tags", []))
    cells[index]["source"] = code
    cells[index + 1]["outputs"] = [] if printed is None else [
        {"output_type": "stream", "name": "stdout", "text": [printed + "\n"]}]


def _copy_of_the_lab(folder, changes: dict[str, list[tuple[str, str, str | None]]] | None = None):
    (folder / "notebooks").mkdir(parents=True)
    for path in NOTEBOOKS:
        nb = _notebook(path.name)
        for exercise, code, printed in (changes or {}).get(path.name[:2], []):
            _answer(nb, exercise, code, printed)
        (folder / "notebooks" / path.name).write_text(json.dumps(nb), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def room(tmp_path_factory):
    room = tmp_path_factory.mktemp("room")
    solution = (SOLUTIONS / "ex01_1.py").read_text()
    wrong = "def fc1_inputs(image_size, conv1_padding):\n    return 400"
    _copy_of_the_lab(room / "alice", {"01": [("ex01_1", solution, "✓ ex01_1: 61,706 trainable parameters"),
                                             ("ex01_2", wrong, "✓ ex01_2: edited by hand"),
                                             ("ex01_3", ("def train_keep_best(model, epochs, train_one_epoch, "
                                                         "score):\n    return {}"), None)]})
    _copy_of_the_lab(room / "bob", {"01": [("ex01_2", wrong, "✗ ex01_2: fc1_inputs(28, 0) gave 400, expected 256")]})
    (room / "bob" / "notebooks" / "02_train_mnist.ipynb").write_text('{"cells": [{"cell_type": "code", "sour')
    old = _copy_of_the_lab(room / "dave")
    nb = json.loads((old / "notebooks" / "04_loading.ipynb").read_text())
    _answer(nb, "ex04_3", "def unsafe_globals(path):\n    return []", "✓ ex04_3: names found")
    check = next(i for i, c in enumerate(nb["cells"]) if "ex04_3" in c["metadata"].get("tags", [])) + 1
    nb["cells"][check]["source"] = "labutils.checks.ex04_3(unsafe_globals);"  # as an earlier lab checked it
    (old / "notebooks" / "04_loading.ipynb").write_text(json.dumps(nb))
    (old / "notebooks" / "05_partial_loading.ipynb").unlink()
    (room / "carol" / "homework").mkdir(parents=True)
    return room


def _report(capsys, *argv) -> tuple[int, list[str], str]:
    status = progress.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out.splitlines(), err


def _row(lines: list[str], name: str) -> str:
    return next(line for line in lines if line.startswith(name + " "))


def test_saved_outputs_give_one_row_per_learner_and_a_line_per_problem(room, capsys):
    status, lines, err = _report(capsys, room)
    assert status == 0
    assert lines[0].split() == ["learner", *[f"{n:02d}" for n in range(13)], "solved"]
    # alice: 01.1 solved, 01.2 shows the ✓ she saved (outputs are trusted), 01.3 changed but never checked
    assert _row(lines, "alice").split()[2] == "✓✓·" and _row(lines, "alice").endswith(f"2/{EXERCISES}")
    assert _row(lines, "bob").split()[1:4] == ["··", "·✗·", "???"]  # 02 is corrupt: not graded, the rest is
    assert "bob/02_train_mnist.ipynb: not a notebook this report can read (JSONDecodeError" in err
    dave = _row(lines, "dave").split()
    assert dave[5] == "··?" and dave[6] == "???" and dave[-1] == f"0/{EXERCISES}"
    assert ("dave/04_loading.ipynb: exercise 04.3 is checked with `labutils.checks.ex04_3(unsafe_globals);` there "
            "and `labutils.checks.ex04_3(audit);` in this lab: another version of the lab. Not graded.") in err
    assert "dave/05_partial_loading.ipynb: missing. Not graded." in err
    assert _row(lines, "carol").split()[1:-1] == ["??", "???", "???", "???", "???", "???", "?????", "???",
                                                  "????", "?" * 10, "????", "??", "?" * 5]
    assert "carol: not a copy of the lab (no numbered notebooks" in err
    assert "Traceback" not in err
    # nothing else is flagged: a copy of this lab, as it ships, is all "not tried"
    assert len(err.strip().splitlines()) == 4


def test_a_changed_signature_is_not_graded_as_a_wrong_answer(room, tmp_path, capsys):
    earlier = "def resume_all(checkpoint, model, optimizer, scheduler):\n    pass"
    eve = _copy_of_the_lab(tmp_path / "eve", {"09": [("ex09_8", earlier, "✗ ex09_8: returned None")]})
    status, lines, err = _report(capsys, eve, "--notebooks", "09")
    assert _row(lines, "eve").split()[1] == "·······?··"
    assert ("exercise 09.8's cell does not define resume_all(checkpoint, make_model, make_optimizer, "
            "make_scheduler) as this lab's does") in err


def test_csv_has_a_column_per_exercise_and_words_not_marks(room, tmp_path, capsys):
    status, lines, _ = _report(capsys, room / "alice", room / "bob", "--csv", tmp_path / "room.csv")
    rows = list(csv.reader((tmp_path / "room.csv").open(encoding="utf-8")))
    assert rows[0][:4] == ["learner", "00.1", "00.2", "01.1"] and rows[0][-1] == "solved"
    assert len(rows[0]) == EXERCISES + 2
    assert rows[1][:6] == ["alice", "not tried", "not tried", "solved", "solved", "not tried"] and rows[1][-1] == "2"
    assert rows[2][4:9] == ["not passing", "not tried", "not graded", "not graded", "not graded"]
    status, _, err = _report(capsys, room / "alice", "--csv", tmp_path / "no such folder" / "room.csv")
    assert status == 1 and "could not write" in err and "Choose a folder you can write to" in err


def test_nothing_to_grade_exits_1_with_a_line_not_a_traceback(tmp_path, monkeypatch, capsys):
    """Through `python -m labutils progress`, as an instructor types it (run here, without a new process)."""
    import runpy

    monkeypatch.setattr(sys, "argv", ["labutils", "progress", str(tmp_path / "nowhere"), str(tmp_path)])
    with pytest.raises(SystemExit) as stopped:
        runpy.run_module("labutils", run_name="__main__")
    err = capsys.readouterr().err
    assert stopped.value.code == 1 and "Traceback" not in err
    assert "nowhere: no such folder." in err and "not a copy of the lab, nor a folder of copies" in err


def test_an_unknown_notebook_number_is_a_usage_error_that_lists_the_right_ones(tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        progress.main([str(tmp_path), "--notebooks", "13"])
    assert stopped.value.code == 2
    assert "--notebooks 13: this lab's notebooks with exercises are 00, 01" in capsys.readouterr().err


def test_run_grades_afresh_and_does_not_trust_a_saved_tick(room, tmp_path, capsys):
    """alice saved a ✓ for a wrong 01.2; run afresh, it is ✗, while her real solution of 01.1 stays ✓."""
    status, lines, err = _report(capsys, room / "alice", "--run", "--notebooks", "01")
    assert status == 0, err
    assert _row(lines, "alice").split()[1:] == ["✓✗✗", "1/3"]  # 01.3's {} fails its check once it runs


def test_every_copy_of_the_lab_as_shipped_is_all_not_tried(tmp_path):
    shutil.copytree(LAB, tmp_path / "notebooks", ignore=shutil.ignore_patterns("solutions", "scripts"))
    learner = progress.grade(progress.find_learners([tmp_path])[0], progress.lab_exercises())
    assert set(learner.grades.values()) == {progress.NOT_TRIED} and not learner.problems


def test_a_home_folder_with_a_clone_of_the_lab_inside_counts_as_its_learner(tmp_path, capsys):
    _copy_of_the_lab(tmp_path / "hub" / "erin" / "save-load-lab",
                     {"00": [("ex00_1", (SOLUTIONS / "ex00_1.py").read_text(), "✓ ex00_1: right")]})
    status, lines, err = _report(capsys, tmp_path / "hub", "--notebooks", "00")
    assert status == 0 and _row(lines, "erin").split()[1:] == ["✓·", "1/2"] and not err


def test_a_fresh_run_whose_setup_fails_grades_nothing_and_says_why(room, monkeypatch, capsys):
    """Without the setup, every check would show no output, which reads as "not tried": it must say so instead."""
    import nbformat
    import papermill

    def setup_fails(source, target, **_):
        nb = nbformat.read(source, as_version=4)
        nb.cells[0].outputs = [nbformat.v4.new_output("error", ename="ModuleNotFoundError",
                                                      evalue="No module named 'labutils'", traceback=[])]
        nbformat.write(nb, target)
        raise papermill.PapermillExecutionError(0, 1, "", "ModuleNotFoundError", "", [])

    monkeypatch.setattr("labutils.runner.run_notebook", setup_fails)
    status, lines, err = _report(capsys, room / "alice", "--run", "--notebooks", "01")
    assert _row(lines, "alice").split()[1:] == ["???", "0/3"]
    assert ("alice/01_define_net.ipynb: the fresh run stopped (RuntimeError: the lab's setup cell raised "
            "ModuleNotFoundError: No module named 'labutils'). Not graded.") in err


def test_the_skeletons_come_from_the_last_commit_not_from_the_instructors_own_answers(tmp_path):
    """An instructor who did 00.1 in their own copy still sees a learner's untouched 00.1 as not tried."""
    lab = tmp_path / "lab" / "notebooks"
    lab.mkdir(parents=True)
    shutil.copy(LAB / "00_welcome.ipynb", lab)
    git = ["git", "-C", str(lab), "-c", "user.name=lab", "-c", "user.email=lab@example.org"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "the lab"], check=True)
    nb = _notebook("00_welcome.ipynb")
    _answer(nb, "ex00_1", (SOLUTIONS / "ex00_1.py").read_text(), "✓ ex00_1: right")
    (lab / "00_welcome.ipynb").write_text(json.dumps(nb))
    shipped = progress.lab_exercises(lab)
    assert [e.skeleton for e in shipped] == [e.skeleton for e in progress.lab_exercises(LAB)][:2]
    (lab / ".git").rename(tmp_path / "not-a-checkout")  # without git, the files are all there is
    assert progress.lab_exercises(lab)[0].skeleton == (SOLUTIONS / "ex00_1.py").read_text()


def test_a_notebook_that_cannot_be_read_gives_a_line_and_the_rest_is_graded(room, monkeypatch, capsys):
    from pathlib import Path

    read = Path.read_text

    def refuse(path, *args, **kwargs):  # as root, chmod cannot make a file unreadable: refuse one file here
        if path.name == "03_saving.ipynb" and "bob" in path.parts:
            raise PermissionError(13, "Permission denied")
        return read(path, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", refuse)
    status, lines, err = _report(capsys, room / "bob", "--notebooks", "01", "03")
    assert status == 0 and _row(lines, "bob").split()[1:] == ["·✗·", "???", "0/6"]
    assert "bob/03_saving.ipynb: cannot be read (Permission denied); give yourself read access" in err


def test_an_exercise_done_in_the_chinese_edition_counts(tmp_path, capsys):
    """A learner who works in NN_name.zh-CN.ipynb: the English notebook stays as shipped, the Chinese one holds the
    answers; each exercise shows the furthest either edition got, and a broken Chinese copy is named."""
    erin = _copy_of_the_lab(tmp_path / "erin")
    for name, answers in (("01_define_net", [("ex01_1", (SOLUTIONS / "ex01_1.py").read_text(),
                                               "✓ ex01_1: Net 中有 61,706 个可训练参数"),
                                              ("ex01_2", "def fc1_inputs(image_size, conv1_padding):\n    return 400",
                                               "✗ ex01_2: fc1_inputs(28, 0) 得到 400，期望 256。")]),
                          ("03_saving", [])):
        nb = _notebook(f"{name}.zh-CN.ipynb")
        for exercise, code, printed in answers:
            _answer(nb, exercise, code, printed)
        (erin / "notebooks" / f"{name}.zh-CN.ipynb").write_text(json.dumps(nb), encoding="utf-8")
    (erin / "notebooks" / "02_train_mnist.zh-CN.ipynb").write_text("{")
    status, lines, err = _report(capsys, tmp_path)
    assert status == 0
    assert _row(lines, "erin").split()[2] == "✓✗·" and _row(lines, "erin").endswith(f"1/{EXERCISES}")
    assert _row(lines, "erin").split()[3] == "···", "a broken Chinese copy does not hide the English one"
    assert "erin/02_train_mnist.zh-CN.ipynb: not a notebook this report can read" in err
    (erin / "notebooks" / "01_define_net.ipynb").unlink()
    status, lines, err = _report(capsys, tmp_path)
    assert _row(lines, "erin").split()[2] == "✓✗·" and "01_define_net.ipynb: missing" not in err
