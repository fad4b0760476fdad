"""Notebook hygiene: committed outputs from one clean run, the lab's opening and ending, and the README table."""
from __future__ import annotations

import ast
import json
import re

import pytest

from labutils.paths import REPO_ROOT
from notebook_files import NOTEBOOKS, ZH_NOTEBOOKS, read, tagged

# The headings every notebook opens and ends with, in each edition (the Chinese ones: tools/translations.py)
HEADINGS = {"en": {"learn": "What you will learn", "need": "You will need", "minute": "minute", "summary": "Summary",
                   "exercises": "Exercises", "exercise": "Exercise", "step": r"Step \d · .*\((🌟+)\)"},
            "zh-CN": {"learn": "你将学到", "need": "你需要", "minute": "分钟", "summary": "小结", "exercises": "练习",
                      "exercise": "练习", "step": r"第 \d 步 · .*（(🌟+)）"}}
ALL_NOTEBOOKS = NOTEBOOKS + ZH_NOTEBOOKS


def edition(path) -> dict[str, str]:
    return HEADINGS["zh-CN" if path.name.endswith(".zh-CN.ipynb") else "en"]


MACHINE_PATH = re.compile(r"(/root/|/home/|/tmp/|/Users/|/private/var/|[A-Z]:\\\\Users)")
MAX_OUTPUT_BYTES = 500_000


def test_there_are_notebooks():
    assert [p.name[:2] for p in NOTEBOOKS] == [f"{i:02d}" for i in range(len(NOTEBOOKS))], "numbered 00, 01, 02, …"
    assert len(NOTEBOOKS) >= 3


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=lambda p: p.name)
class TestCommittedOutputs:
    def test_one_top_to_bottom_run(self, path):
        counts = [c.execution_count for c in read(path).cells if c.cell_type == "code" and c.source.strip()]
        assert counts == list(range(1, len(counts) + 1)), f"{path.name}: re-run it top to bottom (`make notebooks`)"

    def test_no_errors_paths_or_huge_outputs(self, path):
        for i, cell in enumerate(read(path).cells):
            for output in cell.get("outputs", []):
                text = json.dumps(output)
                assert output.output_type != "error", f"{path.name} cell {i}: a committed error"
                assert not MACHINE_PATH.search(text), f"{path.name} cell {i}: a machine path in the output"
                assert len(text) < MAX_OUTPUT_BYTES, f"{path.name} cell {i}: an output of {len(text):,} bytes"
                if output.output_type == "stream":
                    assert "Warning" not in output.text, f"{path.name} cell {i}: a warning in the output"


    def test_no_colour_codes_or_cut_off_tables(self, path):
        for i, cell in enumerate(read(path).cells):
            for output in cell.get("outputs", []):
                assert ANSI not in json.dumps(output), f"{path.name} cell {i}: terminal colour codes in the output"
                for kind, data in output.get("data", {}).items():
                    if kind in ("text/plain", "text/html"):
                        cut = CUT_OFF.search(data if isinstance(data, str) else "".join(data))
                        assert not cut, f"{path.name} cell {i}: a table cut off in the output: {cut.group(0)!r}"


ANSI = "\\u001b["  # as json.dumps writes the escape character
# pandas cuts a cell ("abc...") or leaves out columns ("..."), in text and in HTML
CUT_OFF = re.compile(r"\w\.\.\.(</td>|  |$)|<td>\.\.\.</td>|^\s*\.\.\.\s*$|\s\.\.\.\s", re.M)


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=lambda p: p.name)
class TestStructure:
    def test_opening(self, path):
        cells, words = read(path).cells, edition(path)
        assert cells[0].cell_type == "markdown" and cells[0].source.startswith(f"# {path.name[:2]} · ")
        text = "\n".join(c.source for c in cells[:4] if c.cell_type == "markdown")
        learn = re.search(rf"## {words['learn']}\n((?:- .*\n?(?:  .*\n?)*)+)", text)
        assert learn and 3 <= learn.group(1).count("\n- ") + 1 <= 5, f"{path.name}: 3–5 objectives"
        need = re.search(rf"## {words['need']}\n(.*?)(\n##|\Z)", text, re.S)
        assert need and words["minute"] in need.group(1) and "CPU" in need.group(1), f"{path.name}: minutes and CPU"

    def test_setup_then_parameters_of_literals(self, path):
        nb = read(path)
        setup, parameters = tagged(nb, "setup"), tagged(nb, "parameters")
        assert len(setup) == 1 and len(parameters) == 1
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code.index(setup[0]) == 0 and code.index(parameters[0]) == 1, "setup first, parameters second"
        for node in ast.parse(parameters[0].source).body:
            assert isinstance(node, ast.Assign) and len(node.targets) == 1, "parameters: only NAME = literal"
            assert node.targets[0].id.isupper(), f"parameter {node.targets[0].id} should be UPPER_CASE"
            ast.literal_eval(node.value)

    def test_ending(self, path):
        words = edition(path)
        headings = [line for c in read(path).cells if c.cell_type == "markdown"
                    for line in c.source.splitlines() if line.startswith("## ")]
        if path.name.startswith("12_capstone_project"):  # its exercises are its five steps, then it puts them together
            steps = re.findall(rf"^## {words['step']}$", "\n".join(headings), re.M)
            assert headings[-1] == f"## {words['summary']}" and len(steps) == 5 and steps[0] == "🌟", path.name
            return
        # Summary, then Exercises; or, in the clinic (09), whose exercises are its cases, Exercises, then Summary
        assert sorted(re.split("[:：]", h)[0] for h in headings[-2:]) == sorted(
            [f"## {words['exercises']}", f"## {words['summary']}"]), path.name
        stars = re.findall(rf"\*\*(🌟+) {words['exercise']}", "\n".join(c.source for c in read(path).cells))
        assert len(stars) >= 2 and stars[0] == "🌟", f"{path.name}: at least two exercises, starting at 🌟"

    def test_local_links_and_images_exist(self, path):
        for cell in read(path).cells:
            if cell.cell_type != "markdown":
                continue
            for target in re.findall(r"\]\(([^)#\s]+)", cell.source):
                if not re.match(r"[a-z]+://", target):
                    assert (path.parent / target).exists(), f"{path.name}: broken link {target}"


def test_readme_table_lists_every_notebook():
    readme = (REPO_ROOT / "README.md").read_text()
    listed = re.findall(r"^\|\s*\[?(\d\d)\]?.*?\((notebooks/\d\d_\w+\.ipynb)\)", readme, re.M)
    assert [target for _, target in listed] == [f"notebooks/{p.name}" for p in NOTEBOOKS]
    assert all(number == target[10:12] for number, target in listed)
