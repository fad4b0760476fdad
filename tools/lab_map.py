"""The lab's table of contents, written once: README.md's table, notebook 00's map, the time line of every
notebook's "You will need" and the "← previous · next →" line that ends every notebook all come from NOTEBOOKS.

    python tools/lab_map.py           # rewrite them from NOTEBOOKS (make map)
    python tools/lab_map.py --check   # change nothing; exit 1 naming each file that differs (a test runs it)

Study minutes are computed from each notebook by the method docs/INSTRUCTOR.md states ("How study times are
estimated"): its prose at a careful reading speed, its code read and run line by line, each exercise by its stars and
the length of its reference solution, and its run time. Run times are measured (docs/INSTRUCTOR.md gives the figures),
rounded up so that a slower laptop stays within them.
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

import lab  # tools/lab.py, beside this file

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
README = REPO_ROOT / "README.md"


@dataclass(frozen=True)
class Notebook:
    name: str   # the file in notebooks/, without .ipynb
    title: str  # short, for tables and links
    learn: str  # what you learn, for the tables
    run: str    # to run it top to bottom on a 2-core CPU with the model cache filled (measured, rounded up)

    @property
    def number(self) -> str:
        return self.name[:2]

    @property
    def file(self) -> str:
        return f"{self.name}.ipynb"

    @property
    def estimate(self) -> "Estimate":
        return estimate(NOTEBOOK_DIR / self.file, self.run)

    @property
    def study(self) -> int:
        """Minutes to study it, exercises included (the method of docs/INSTRUCTOR.md, rounded up to 5)."""
        return self.estimate.total


# How study time is estimated (docs/INSTRUCTOR.md, "How study times are estimated", explains each figure).
PROSE_WORDS_PER_MINUTE = 150     # careful reading of technical prose: about half of everyday reading speed
CODE_LINES_PER_MINUTE = 15       # a line of code read, run and its output looked at: 4 seconds
STAR_MINUTES = {1: 2, 2: 4, 3: 8}    # understanding an exercise and finding its idea, by its stars
SOLUTION_LINE_MINUTES = 0.4      # writing one line of the reference solution, debugging included (2.5 a minute)
EXERCISE = re.compile(r"(🌟+) Exercise (\d\d)\.(\d+)|Step (\d+) [^\n]*\((🌟+)\)")


@dataclass(frozen=True)
class Estimate:
    """The minutes a careful learner needs for one notebook, and what they are made of."""
    reading: float    # the prose
    code: float       # the code cells, read and run
    exercises: float  # every exercise, thought about and written
    count: int        # how many exercises
    run: float        # the notebook's run time

    @property
    def total(self) -> int:
        """All of it, rounded up to 5 minutes."""
        return 5 * math.ceil((self.reading + self.code + self.exercises + self.run) / 5)

    @property
    def read_and_run(self) -> int:
        """The notebook without its exercises, rounded up to 5 minutes."""
        return 5 * math.ceil((self.reading + self.code + self.run) / 5)


def agenda_figures() -> dict[str, float]:
    """The figures docs/INSTRUCTOR.md's agendas quote, from the same estimates (a test compares them): the hours a
    learner alone needs for 00-06, and the minutes of homework each agenda leaves."""
    by_number = {nb.number: nb.estimate for nb in NOTEBOOKS}

    def exercises(*numbers: str) -> int:
        return sum(by_number[n].total - by_number[n].read_and_run for n in numbers)

    atomic_save = STAR_MINUTES[2] + SOLUTION_LINE_MINUTES * _solution_lines(NOTEBOOK_DIR, "ex03_2")  # done in class
    return {"hours for 00-06": round(sum(by_number[f"0{n}"].total for n in range(7)) / 60, 1),
            "homework of the 90 minutes": exercises("03", "04", "06"),
            "homework of the 3 hours": 5 * round((exercises(*(f"0{n}" for n in range(10)))
                                                  - atomic_save) / 5),
            "study of 10": by_number["10"].total, "study of 11": by_number["11"].total,
            "study of 12": by_number["12"].total}


def _run_minutes(run: str) -> float:
    """Minutes from a run time: "under 10 s" -> 1/6, "under a minute" -> 1, "under 2 minutes" -> 2."""
    number = re.search(r"(\d+|a) (s\b|minute)", run)
    if not number:
        raise ValueError(f"a run time reads like 'under 30 s' or 'under 2 minutes', not {run!r}")
    amount = 1 if number.group(1) == "a" else int(number.group(1))
    return amount / 60 if number.group(2) == "s" else amount


def _solution_lines(folder: Path, check: str) -> int:
    """The lines of the reference solution of `check` that are code (not blank, not a comment or a docstring)."""
    path = folder / "solutions" / f"{check}.py"
    if not path.is_file():
        raise ValueError(f"no solution {path.name} in {folder.name}/solutions for the study time of {check}")
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    return sum(1 for line in lines if line and not line.startswith(("#", '"""', "'''")))


def estimate(path: Path, run: str) -> Estimate:
    """The study time of the notebook at `path` by the lab's method: words of prose (a code span or a link counts as
    one word), lines of code outside the exercise cells, each exercise's stars and solution, and `run`."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    words = lines = 0
    stars: dict[str, int] = {}
    for cell in cells:
        source = "".join(cell["source"])
        tags = cell.get("metadata", {}).get("tags", [])
        if cell["cell_type"] == "markdown" and NAVIGATION not in tags:
            words += len(re.sub(r"`[^`]*`|\]\([^)]*\)|<[^>]+>", " x ", source).split())
            for match in EXERCISE.finditer(source):
                if match.group(2):
                    stars[f"ex{match.group(2)}_{match.group(3)}"] = len(match.group(1))
                else:
                    stars[f"ex{path.name[:2]}_{match.group(4)}"] = len(match.group(5))
        elif cell["cell_type"] == "code" and "exercise" not in tags:
            lines += sum(1 for line in source.splitlines() if line.strip())
    checks = sorted({tag for cell in cells for tag in cell.get("metadata", {}).get("tags", [])
                     if re.fullmatch(r"ex\d\d_\d+", tag)})
    unrated = [check for check in checks if check not in stars]
    if unrated:
        raise ValueError(f"{path.name}: no stars for {', '.join(unrated)}: its text must start "
                         "\"**🌟🌟 Exercise NN.M: ...\"")
    exercises = sum(STAR_MINUTES[stars[c]] + SOLUTION_LINE_MINUTES * _solution_lines(path.parent, c) for c in checks)
    return Estimate(words / PROSE_WORDS_PER_MINUTE, lines / CODE_LINES_PER_MINUTE, exercises, len(checks),
                    _run_minutes(run))


NOTEBOOKS = [
    Notebook("00_welcome", "Welcome",
             "how the lab works; your environment; MNIST as a `Dataset` and as in-memory tensors", "under 10 s"),
    Notebook("01_define_net", "Define the Net",
             "the `Net` of the article the lab follows and its two bugs; parameters vs buffers; the anatomy of a "
             "`state_dict`", "under 10 s"),
    Notebook("02_train_mnist", "Train on MNIST",
             "a complete training loop to 99 % in 10–25 s on a 2-core CPU; curves and mistakes; the first "
             "`torch.save`", "under a minute"),
    Notebook("03_saving", "Saving",
             "what `torch.save` writes; whole-model pickles and why not; full checkpoints; safetensors; atomic saves "
             "that survive a full disk", "under 30 s"),
    Notebook("04_loading", "Loading",
             "exact round trips; why a loaded model scores worse; `map_location`; `weights_only` against a malicious "
             "file; an error clinic with `diagnose`", "under a minute"),
    Notebook("05_partial_loading", "Partial loading",
             "`strict=False` and its silent failure; saving part of a model; new heads; freezing, and the BatchNorm "
             "it does not freeze; key remapping; optimizer state that no longer fits; transfer measured, with a layer "
             "picker", "under a minute"),
    Notebook("06_resume_training", "Resume training",
             "what a resumable checkpoint holds; a checkpoint manager; a `SIGTERM` handler of your own (save, exit "
             "143) and `kill -9`, resume, and proof that the run is identical, with augmentation in `DataLoader` "
             "workers; what each missing piece breaks; a `GradScaler` and averaged (EMA) weights in the resume, and "
             "which weights to ship", "under a minute"),
    Notebook("07_deploy_and_share", "Deploy and share",
             "inference vs training artifacts; `torch.export`; ONNX with onnxruntime parity; a Hugging Face-style "
             "model folder with a model card; `tools/predict.py`; formats compared; the same weights answering in "
             "TensorFlow (optional)", "under 30 s"),
    Notebook("08_large_models", "Large models",
             "checkpoint sizes from parameters and dtype; bfloat16; peak memory of four ways to load (meta device, "
             "`mmap`, `assign=True`); what a safe save costs per GiB and how to check and load in one read; sharded "
             "safetensors; `torch.distributed.checkpoint` with two processes, resharding and `async_save`; saving "
             "from several processes (rank 0 behind a barrier, `map_location` per rank, one file from FSDP); which "
             "format when", "under a minute"),
    Notebook("09_troubleshooting_clinic", "Troubleshooting clinic",
             "thirteen broken checkpoints made on the spot, each with the real error, a hint and a checked fix: "
             "missing buffers, a GPU file on a CPU, a worse model, `module.` prefixes, a new head, a NumPy scalar, a "
             "truncated file, a jumping learning rate or a scheduler rebuilt with `last_epoch`, a pickle without its "
             "class, a buffer a library stopped saving, a file from a newer PyTorch, a lambda that will not pickle, "
             "a Git LFS pointer where the file should be; which files other frameworks and runtimes can load",
             "under 30 s"),
    Notebook("10_language_model", "A small language model",
             "a tiny GPT-2 trained offline to add; `save_pretrained` folders (config, tokenizer, tied weights, "
             "shards), bfloat16, what breaks without the config or the tokenizer; a LoRA adapter saved, loaded in a "
             "fresh process and merged; the `Trainer`'s checkpoints, interrupted and resumed bit for bit",
             "under 2 minutes"),
    Notebook("11_frameworks", "Checkpoints in frameworks",
             "what Lightning, accelerate and transformers save, mapped to the lab's resume state: a `.ckpt` opened, "
             "resumed and cut down to a plain `state_dict`, `ModelCheckpoint`, one save under DDP; `save_state` with "
             "`skip_first_batches`; the load report read correctly; `save_total_limit` that keeps the best",
             "under 30 s"),
    Notebook("12_capstone_project", "Capstone: your own project",
             "on your own, in plain PyTorch: a training loop with a schedule, atomic checkpoints with sha256 "
             "sidecars, keep the last k and the best, a run killed with `SIGKILL` and resumed bit for bit, an ONNX "
             "export and a folder that loads without your code", "under 40 s"),
]

BEGIN = "<!-- the lab map: written by tools/lab_map.py from its NOTEBOOKS list; edit it there -->"
END = "<!-- end of the lab map -->"
NAVIGATION = "navigation"  # the tag of the cell that ends every notebook
TIME_LINE = re.compile(r"^- about \d+ minutes to study[^\n]*$", re.M)


def table(folder: str) -> str:
    """The notebooks as a Markdown table whose links start with `folder` ("notebooks/" in the README)."""
    rows = ["| # | notebook | what you learn | study | run |", "|---|---|---|---|---|"]
    rows += [f"| {nb.number} | [{nb.title}]({folder}{nb.file}) | {nb.learn} | {nb.study} min | {nb.run} |"
             for nb in NOTEBOOKS]
    return "\n".join(rows)


def with_table(text: str, folder: str, where: str) -> str:
    """`text` with the part between BEGIN and END replaced by the table; ValueError when the markers are missing."""
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise ValueError(f"{where} has no lab map: put the two lines {BEGIN} and {END} where the table goes")
    return pattern.sub(lambda _: f"{BEGIN}\n{table(folder)}\n{END}", text)


def time_line(nb: Notebook) -> str:
    e = nb.estimate
    return (f"- about {e.total} minutes to study: {e.read_and_run} to read and run it, {e.total - e.read_and_run} for "
            f"its {e.count} exercises; {nb.run} to run on a 2-core CPU (no GPU needed);")


def navigation(index: int) -> str:
    """The line that ends notebook `index`: the previous one, the map in 00, the next one."""
    links = []
    if index > 0:
        before = NOTEBOOKS[index - 1]
        links += [f"← [{before.number} · {before.title}]({before.file})", "[the map](00_welcome.ipynb)"]
    if index + 1 < len(NOTEBOOKS):
        after = NOTEBOOKS[index + 1]
        links.append(f"[{after.number} · {after.title}]({after.file}) →")
    else:
        links.append("the end of the lab")
    return " · ".join(links)


def written(index: int, nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Notebook `index` with its time line, its navigation cell (and, for 00, its map) as NOTEBOOKS says."""
    entry = NOTEBOOKS[index]
    need = [cell for cell in nb.cells[:4] if cell.cell_type == "markdown" and "## You will need" in cell.source]
    if not need or not TIME_LINE.search(need[0].source):
        raise ValueError(f"{entry.file}: its \"You will need\" has no line starting \"- about N minutes to study\"")
    need[0].source = TIME_LINE.sub(lambda _: time_line(entry), need[0].source, count=1)
    if index == 0:
        maps = [cell for cell in nb.cells if cell.cell_type == "markdown" and BEGIN in cell.source]
        if not maps:
            raise ValueError(f"{entry.file} has no lab map: put {BEGIN} and {END} in its map cell")
        maps[0].source = with_table(maps[0].source, "", entry.file)
    last = nb.cells[-1]
    if NAVIGATION not in last.get("metadata", {}).get("tags", []):
        last = nbformat.v4.new_markdown_cell(metadata={"tags": [NAVIGATION]})
        nb.cells.append(last)
    last.source = navigation(index)
    return nb


def check_files() -> list[str]:
    """Return what differs from NOTEBOOKS in the folder: a notebook listed and missing, one present and unlisted."""
    present = [p.stem for p in lab.notebooks(NOTEBOOK_DIR)]
    listed = [nb.name for nb in NOTEBOOKS]
    problems = [f"notebooks/{name}.ipynb is listed in tools/lab_map.py but does not exist"
                for name in listed if name not in present]
    problems += [f"notebooks/{name}.ipynb exists but tools/lab_map.py does not list it"
                 for name in present if name not in listed]
    if listed != sorted(listed):
        problems.append("tools/lab_map.py lists the notebooks out of order")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if any file differs")
    args = parser.parse_args(argv)
    try:
        return _write(args.check)
    except ValueError as err:  # a marker or a "You will need" line is missing: the message names the file and fix
        print(err, file=sys.stderr)
        return 1


def _write(check: bool) -> int:
    problems = check_files()
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    stale = []
    readme = README.read_text()
    new_readme = with_table(readme, "notebooks/", "README.md")
    if new_readme != readme:
        stale.append("README.md")
        if not check:
            README.write_text(new_readme)
    for index, entry in enumerate(NOTEBOOKS):
        path = NOTEBOOK_DIR / entry.file
        before = path.read_text()
        nb = written(index, nbformat.reads(before, as_version=4))
        after = nbformat.writes(nb) + "\n"
        if after != before:
            stale.append(f"notebooks/{entry.file}")
            if not check:
                path.write_text(after)
    if stale and check:
        print("not as tools/lab_map.py writes them (run: make map): " + ", ".join(stale), file=sys.stderr)
        return 1
    for name in stale:
        print(f"rewrote {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
