"""Where a room stands: `python -m labutils progress FOLDER ...` grades the exercises of many copies of the lab.

Each FOLDER is one learner's copy of the lab (its root, its notebooks/ folder, or a home folder holding one), or a
folder of such copies: one per learner, as collected from a room or a JupyterHub. The report has one row per
learner and one column per exercise:

    ✓  the check passed          ✗  tried, and the check did not pass
    ·  not tried (the exercise cell is as the lab ships it, or its check never ran)
    ?  not graded: the notebook is missing, unreadable, or from another version of the lab (a line says which)

A learner may work in either edition of a notebook, the English `NN_name.ipynb` or the Chinese
`NN_name.zh-CN.ipynb` (the same exercise and check cells): both are read, and each exercise shows the furthest
either got.

By default it reads the outputs the notebooks were saved with: it runs nothing, so it is fast and safe with
notebooks from anyone, but it trusts what was saved. `--run` grades afresh: for each notebook it runs the lab's
setup cell, the learner's exercise cells and the lab's checks, in a new kernel of this Python, one notebook at a
time. That runs the learners' code on this machine: use it on copies you are willing to run.
"""
from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .paths import REPO_ROOT, display_path, notebooks as lab_notebooks

SOLVED, WRONG, NOT_TRIED, UNKNOWN = "✓", "✗", "·", "?"
WORDS = {SOLVED: "solved", WRONG: "not passing", NOT_TRIED: "not tried", UNKNOWN: "not graded"}
RUN_TIMEOUT = 300  # seconds per cell with --run; the slowest check takes a few seconds


@dataclass
class Exercise:
    """One exercise as this version of the lab ships it."""

    id: str  # "ex04_3"
    notebook: str  # "04_loading.ipynb"
    skeleton: str  # the exercise cell's source
    check: str  # the check cell's source, such as "labutils.checks.ex04_3(audit);"

    @property
    def label(self) -> str:
        return f"{self.id[2:4]}.{self.id[5:]}"


@dataclass
class Learner:
    name: str
    folder: Path | None
    grades: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _text(value) -> str:
    """A notebook's text field, which the format allows as one string or a list of lines."""
    return "".join(value) if isinstance(value, list) else str(value)


def _source(cell: dict) -> str:
    return _text(cell.get("source", ""))


def _tags(cell: dict) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _as_shipped(path: Path) -> str:
    """The notebook as the lab's last commit has it, when this is a git checkout: an instructor may have done the
    exercises in their own copy, and a learner's untouched cell must still read as the lab's skeleton."""
    import subprocess

    try:
        shown = subprocess.run(["git", "-C", str(path.parent), "show", f"HEAD:./{path.name}"], capture_output=True,
                               timeout=30)
    except (OSError, subprocess.SubprocessError):
        shown = None
    return shown.stdout.decode("utf-8") if shown is not None and shown.returncode == 0 else path.read_text("utf-8")


def lab_exercises(notebooks: Path = REPO_ROOT / "notebooks") -> list[Exercise]:
    """Every exercise of the lab in `notebooks`, in order, with its skeleton and its check cell, as shipped."""
    found = []
    for path in lab_notebooks(notebooks):
        cells = json.loads(_as_shipped(path))["cells"]
        for index, cell in enumerate(cells):
            ids = [t for t in _tags(cell) if re.fullmatch(r"ex\d\d_\d+", t)]
            if "exercise" in _tags(cell) and ids:
                found.append(Exercise(ids[0], path.name, _source(cell), _source(cells[index + 1]).strip()))
    return found


def _normalised(code: str) -> str:
    return "\n".join(line.rstrip() for line in code.strip().splitlines())


def _signatures(code: str) -> dict[str, list[str]] | None:
    """The functions a cell defines, each with its parameters' names; None when the cell is not valid Python."""
    import ast

    try:
        tree = ast.parse(code)
    except SyntaxError:
        return None
    return {node.name: [a.arg for a in node.args.posonlyargs + node.args.args] for node in tree.body
            if isinstance(node, ast.FunctionDef)}


def _check_status(outputs: list, exercise_id: str) -> str:
    """What a check cell's outputs show: ✓ when it printed its ✓, not tried when it never ran, ? when the check
    itself failed (⚠, the lab's fault), else ✗."""
    if not outputs:
        return NOT_TRIED
    text = "".join(_text(o.get("text", "")) for o in outputs if o.get("output_type") == "stream")
    if text.lstrip().startswith(f"⚠ {exercise_id}"):
        return UNKNOWN
    return SOLVED if text.lstrip().startswith(f"✓ {exercise_id}") else WRONG


def grade_notebook(cells: list, exercises: list[Exercise], learner: Learner, where: str) -> None:
    """Grade `exercises` (all from one notebook) from the saved cells of the learner's copy of it."""
    checks = {}
    for index, cell in enumerate(cells):
        source = _source(cell).strip()
        for exercise in exercises:
            if source.startswith(f"labutils.checks.{exercise.id}("):
                checks[exercise.id] = (index, source)
    exercise_cells = {tag: _source(cell) for cell in cells for tag in _tags(cell)}
    for exercise in exercises:
        if exercise.id not in checks or exercise.id not in exercise_cells:
            learner.problems.append(f"{where}: exercise {exercise.label}'s cells are missing: it was deleted, or the "
                                    "notebook comes from another version of the lab. Not graded.")
            learner.grades[exercise.id] = UNKNOWN
            continue
        index, source = checks[exercise.id]
        if _normalised(source) != _normalised(exercise.check):
            learner.problems.append(f"{where}: exercise {exercise.label} is checked with `{source}` there and "
                                    f"`{exercise.check}` in this lab: another version of the lab. Not graded.")
            learner.grades[exercise.id] = UNKNOWN
        elif _normalised(exercise_cells[exercise.id]) == _normalised(exercise.skeleton):
            learner.grades[exercise.id] = NOT_TRIED
        elif not _same_functions(exercise_cells[exercise.id], exercise.skeleton):
            learner.problems.append(f"{where}: exercise {exercise.label}'s cell does not define "
                                    f"{_described(exercise.skeleton)} as this lab's does: another version of the "
                                    "lab, or renamed parameters. Not graded.")
            learner.grades[exercise.id] = UNKNOWN
        else:
            learner.grades[exercise.id] = _check_status(cells[index].get("outputs", []), exercise.id)
            if learner.grades[exercise.id] == UNKNOWN:
                learner.problems.append(f"{where}: exercise {exercise.label}'s check failed by a fault of the lab "
                                        "(its output starts with ⚠): please report it. Not graded.")


def _same_functions(answer: str, skeleton: str) -> bool:
    """True when the answer defines the skeleton's functions with the same parameters (or is not valid Python yet:
    its check then says what is wrong)."""
    found, wanted = _signatures(answer), _signatures(skeleton) or {}
    return found is None or all(found.get(name) == parameters for name, parameters in wanted.items())


def _described(skeleton: str) -> str:
    functions = _signatures(skeleton) or {}
    return " and ".join(f"{name}({', '.join(parameters)})" for name, parameters in functions.items())


def _notebooks_folder(folder: Path, deeper: bool = True) -> Path | None:
    """The folder that holds a learner's notebooks: the folder itself, its notebooks/, or (`deeper`) a notebooks/
    one level further down, as in a JupyterHub home folder that holds a clone of the lab."""
    for candidate in (folder, folder / "notebooks", *(sorted(folder.glob("*/notebooks")) if deeper else [])):
        if candidate.is_dir() and lab_notebooks(candidate):
            return candidate
    return None


def find_learners(paths: list[Path]) -> list[Learner]:
    """One Learner per copy of the lab in `paths`: each path is a copy, or a folder of copies (one per learner)."""
    learners = []
    for path in paths:
        if not path.is_dir():
            learners.append(Learner(path.name, None, problems=[f"{display_path(path)}: no such folder."]))
        elif _notebooks_folder(path, deeper=False) is not None:
            learners.append(Learner(path.resolve().name, _notebooks_folder(path, deeper=False)))
        else:
            inside = [p for p in sorted(path.iterdir()) if p.is_dir() and not p.name.startswith(".")]
            copies = [Learner(p.name, _notebooks_folder(p)) for p in inside]
            for copy in copies:
                if copy.folder is None:
                    copy.problems.append(f"{display_path(path / copy.name)}: not a copy of the lab (no numbered "
                                         "notebooks such as 00_welcome.ipynb in it or in its notebooks/ folder).")
            if not copies:
                why = (f"{display_path(path)}: not a copy of the lab, nor a folder of copies (no numbered notebooks "
                       "such as 00_welcome.ipynb, in it or one level down).")
                copies = [Learner(path.resolve().name, None, problems=[why])]
            learners.extend(copies)
    return learners


def _read_cells(path: Path) -> list:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    if not isinstance(cells, list):
        raise ValueError("its cells are not a list")
    return cells


def _run_exercises(path: Path, exercises: list[Exercise], learner_cells: list) -> list:
    """Run the lab's setup, the learner's exercise cells and the lab's checks in a new kernel; return the cells."""
    import nbformat
    import papermill

    from .runner import run_notebook

    lab = nbformat.read(REPO_ROOT / "notebooks" / exercises[0].notebook, as_version=4)
    answers = {tag: _source(cell) for cell in learner_cells for tag in _tags(cell)}
    cells = [c for c in lab.cells if {"setup", "parameters"} & set(c.metadata.get("tags", []))]
    for exercise in exercises:
        for source, tag in ((answers.get(exercise.id, exercise.skeleton), exercise.id), (exercise.check, None)):
            cell = nbformat.v4.new_code_cell(source)
            cell.metadata["tags"] = ["raises-exception"] + ([tag] if tag else [])
            cells.append(cell)
    lab.cells = cells
    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / path.name, Path(tmp) / f"ran-{path.name}"
        nbformat.write(lab, source)
        try:
            ran = run_notebook(source, target, cwd=REPO_ROOT / "notebooks", timeout=RUN_TIMEOUT)
        except papermill.PapermillExecutionError:  # a cell raised; the tagged ones let the rest run
            ran = nbformat.read(target, as_version=4)
    for cell in ran.cells:
        failed = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if failed and "raises-exception" not in cell.metadata.get("tags", []):  # the lab's own setup
            raise RuntimeError(f"the lab's setup cell raised {failed[0].get('ename')}: {failed[0].get('evalue')}")
    return [dict(cell) for cell in ran.cells]


def _grade_file(learner: Learner, path: Path, group: list[Exercise], run: bool) -> dict[str, str]:
    """Grade one notebook file of the learner's (an edition of one of the lab's notebooks); say what went wrong."""
    where = f"{learner.name}/{path.name}"
    unknown = {e.id: UNKNOWN for e in group}
    try:
        cells = _read_cells(path)
    except FileNotFoundError:
        learner.problems.append(f"{where}: missing. Not graded.")
        return unknown
    except OSError as err:
        learner.problems.append(f"{where}: cannot be read ({err.strerror}); give yourself read access to the "
                                "learners' folders. Not graded.")
        return unknown
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as err:
        learner.problems.append(f"{where}: not a notebook this report can read ({type(err).__name__}: "
                                f"{str(err)[:80]}); open it in JupyterLab to see if it can be saved again. "
                                "Not graded.")
        return unknown
    if run:
        try:
            cells = _run_exercises(path, group, cells)
        except Exception as err:  # a kernel that died, a timeout: say so and grade the rest
            learner.problems.append(f"{where}: the fresh run stopped ({type(err).__name__}: "
                                    f"{str(err).splitlines()[0][:100] if str(err) else ''}). Not graded.")
            return unknown
    graded = Learner(learner.name, learner.folder, problems=learner.problems)
    grade_notebook(cells, group, graded, where)
    return graded.grades


# When a learner has worked in both editions of a notebook (NN_name.ipynb and its Chinese NN_name.zh-CN.ipynb,
# whose exercise and check cells are the same), each exercise shows the furthest either got.
FURTHEST = {SOLVED: 3, WRONG: 2, NOT_TRIED: 1, UNKNOWN: 0}


def grade(learner: Learner, exercises: list[Exercise], run: bool = False) -> Learner:
    """Fill in the learner's grades from their notebooks' saved outputs, or from a fresh run of their answers."""
    by_notebook: dict[str, list[Exercise]] = {}
    for exercise in exercises:
        by_notebook.setdefault(exercise.notebook, []).append(exercise)
    for name, group in by_notebook.items():
        if learner.folder is None:
            learner.grades.update({e.id: UNKNOWN for e in group})
            continue
        english, chinese = learner.folder / name, learner.folder / f"{Path(name).stem}.zh-CN.ipynb"
        editions = [english] if english.exists() or not chinese.exists() else []
        editions += [chinese] if chinese.exists() else []
        results = [_grade_file(learner, path, group, run) for path in editions]
        for exercise in group:
            learner.grades[exercise.id] = max((r[exercise.id] for r in results), key=FURTHEST.__getitem__)
    return learner


def table(learners: list[Learner], exercises: list[Exercise]) -> str:
    """A terminal table: a row per learner, a character per exercise, grouped by notebook."""
    groups: dict[str, list[Exercise]] = {}
    for exercise in exercises:
        groups.setdefault(exercise.notebook[:2], []).append(exercise)
    width = max([len("learner")] + [len(learner.name) for learner in learners])
    header = f"{'learner':<{width}}  " + " ".join(f"{n:<{len(g)}}" for n, g in groups.items()) + "  solved"
    lines = [header]
    for learner in learners:
        cells = " ".join("".join(learner.grades.get(e.id, UNKNOWN) for e in g) for g in groups.values())
        solved = sum(grade == SOLVED for grade in learner.grades.values())
        lines.append(f"{learner.name:<{width}}  {cells}  {solved}/{len(exercises)}")
    lines.append("")
    lines.append("   ".join(f"{mark} {word}" for mark, word in WORDS.items()) +
                 f"; columns: the exercises of each notebook in order ({exercises[0].label}, {exercises[1].label}, …)")
    return "\n".join(lines)


def write_csv(learners: list[Learner], exercises: list[Exercise], path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["learner", *(e.label for e in exercises), "solved"])
        for learner in learners:
            grades = [WORDS[learner.grades.get(e.id, UNKNOWN)] for e in exercises]
            writer.writerow([learner.name, *grades, sum(grade == SOLVED for grade in learner.grades.values())])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m labutils progress", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    parser.add_argument("folders", nargs="+", type=Path, metavar="FOLDER",
                        help="a learner's copy of the lab, or a folder with one copy per learner")
    parser.add_argument("--run", action="store_true",
                        help="grade by running each learner's exercise cells and the lab's checks afresh")
    parser.add_argument("--csv", type=Path, metavar="FILE", help="also write the report as CSV to FILE")
    parser.add_argument("--notebooks", nargs="+", metavar="NN", default=[],
                        help="only these notebooks' exercises, by number (such as 03 04)")
    args = parser.parse_args(argv)
    exercises = lab_exercises()
    numbers = sorted({exercise.notebook[:2] for exercise in exercises})
    unknown = [n for n in args.notebooks if n not in numbers]
    if unknown:
        parser.error(f"--notebooks {' '.join(unknown)}: this lab's notebooks with exercises are {', '.join(numbers)}.")
    exercises = [e for e in exercises if not args.notebooks or e.notebook[:2] in args.notebooks]
    learners = [grade(learner, exercises, run=args.run) for learner in find_learners(args.folders)]
    print(table(learners, exercises))
    problems = [problem for learner in learners for problem in learner.problems]
    for problem in problems:
        print(problem, file=sys.stderr)
    if args.csv:
        try:
            write_csv(learners, exercises, args.csv)
        except OSError as err:
            print(f"could not write {display_path(args.csv)}: {err.strerror}. Choose a folder you can write to.",
                  file=sys.stderr)
            return 1
        print(f"written: {display_path(args.csv)}")
    return 0 if any(learner.folder is not None for learner in learners) else 1
