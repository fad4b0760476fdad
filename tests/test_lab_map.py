"""tools/lab_map.py: README.md's table, notebook 00's map, each notebook's time line and its navigation line are
written from one list, and a test fails when a file says otherwise."""
from __future__ import annotations

import re
import runpy
import shutil

import nbformat
import pytest

from labutils.paths import REPO_ROOT
from notebook_files import NOTEBOOKS, read, tagged

LAB_MAP = runpy.run_path(str(REPO_ROOT / "tools" / "lab_map.py"), run_name="lab_map")


def test_the_files_are_as_the_lab_map_writes_them(capsys):
    assert LAB_MAP["main"](["--check"]) == 0, capsys.readouterr().err


@pytest.fixture
def copy(tmp_path, monkeypatch):
    """The README and the notebooks copied to `tmp_path`, where the tool's globals now point."""
    shutil.copy(REPO_ROOT / "README.md", tmp_path / "README.md")
    (tmp_path / "notebooks").mkdir()
    for path in NOTEBOOKS:
        shutil.copy(path, tmp_path / "notebooks" / path.name)
    shutil.copytree(REPO_ROOT / "notebooks" / "solutions", tmp_path / "notebooks" / "solutions")  # study times
    main = LAB_MAP["main"]
    monkeypatch.setitem(main.__globals__, "README", tmp_path / "README.md")
    monkeypatch.setitem(main.__globals__, "NOTEBOOK_DIR", tmp_path / "notebooks")
    return tmp_path


def test_a_table_row_edited_by_hand_is_found_and_rewritten(copy, capsys):
    readme, first = copy / "README.md", LAB_MAP["NOTEBOOKS"][0]
    row = f"| {first.study} min | {first.run} |"
    assert row in readme.read_text()
    readme.write_text(readme.read_text().replace(row, f"| {first.study + 5} min | {first.run} |", 1))
    assert LAB_MAP["main"](["--check"]) == 1
    assert "README.md" in capsys.readouterr().err
    assert LAB_MAP["main"]([]) == 0 and LAB_MAP["main"](["--check"]) == 0
    assert readme.read_text() == (REPO_ROOT / "README.md").read_text()


def test_a_notebook_missing_from_the_list_or_from_the_folder_is_named(copy, capsys, monkeypatch):
    (copy / "notebooks" / "10_extra.ipynb").write_text((copy / "notebooks" / NOTEBOOKS[0].name).read_text())
    assert LAB_MAP["main"](["--check"]) == 1
    assert "notebooks/10_extra.ipynb exists but tools/lab_map.py does not list it" in capsys.readouterr().err
    (copy / "notebooks" / "10_extra.ipynb").unlink()
    (copy / "notebooks" / NOTEBOOKS[-1].name).unlink()
    assert LAB_MAP["main"](["--check"]) == 1
    assert f"{NOTEBOOKS[-1].name} is listed in tools/lab_map.py but does not exist" in capsys.readouterr().err


def test_every_notebook_ends_with_its_navigation_and_says_how_long_it_takes():
    entries = LAB_MAP["NOTEBOOKS"]
    assert [f"{entry.name}.ipynb" for entry in entries] == [path.name for path in NOTEBOOKS]
    for index, (entry, path) in enumerate(zip(entries, NOTEBOOKS, strict=True)):
        nb = read(path)
        assert tagged(nb, "navigation") == [nb.cells[-1]], f"{path.name}: one navigation cell, the last"
        links = re.findall(r"\]\((\d\d_\w+\.ipynb)\)", nb.cells[-1].source)
        if index > 0:
            assert links[0] == NOTEBOOKS[index - 1].name and "00_welcome.ipynb" in links, f"{path.name}: back, map"
        if index + 1 < len(NOTEBOOKS):
            assert links[-1] == NOTEBOOKS[index + 1].name, f"{path.name}: the next notebook last"
        need = next(cell.source for cell in nb.cells[:4] if "## You will need" in cell.source)
        assert f"- about {entry.study} minutes to study" in need and entry.run in need, path.name


def test_the_instructors_guide_gives_the_same_study_minutes():
    guide = (REPO_ROOT / "docs" / "INSTRUCTOR.md").read_text()
    rows = dict(re.findall(r"^\| (\d\d) [^|]+\|[^|]+\|[^|]+\| (\d+) min", guide, re.M))
    assert rows == {entry.number: str(entry.study) for entry in LAB_MAP["NOTEBOOKS"]}


def test_a_file_without_its_markers_is_named_with_the_fix(copy, capsys):
    readme = copy / "README.md"
    readme.write_text(readme.read_text().replace(LAB_MAP["BEGIN"], ""))
    assert LAB_MAP["main"](["--check"]) == 1
    assert "README.md has no lab map: put the two lines" in capsys.readouterr().err


AGENDA = {  # where docs/INSTRUCTOR.md quotes each figure of tools/lab_map.py's agenda_figures()
    "hours for 00-06": r"00 to 06 alone take a learner working alone ([\d.]+) hours",
    "homework of the 90 minutes": r"the exercises of 03, 04 and 06 \((\d+) minutes by the table\)",
    "homework of the 3 hours": r"every exercise of 00 to 09 but 03\.2 \((\d+) minutes by the table\)",
    "study of 10": r"10, the small language model \((\d+) minutes\)",
    "study of 11": r"11, the frameworks \((\d+) minutes\)",
    "study of 12": r"12, the capstone, or a second session \((\d+) minutes\)",
}


def agenda_problems(guide: str) -> list[str]:
    figures = LAB_MAP["agenda_figures"]()
    problems = []
    for name, pattern in AGENDA.items():
        found = re.search(pattern, guide.replace("\n", " "))
        if not found or float(found.group(1)) != figures[name]:
            problems.append(f"{name}: the guide says {found and found.group(1)}, the estimates {figures[name]}")
    return problems


def test_the_agendas_quote_the_estimates_and_say_what_is_homework():
    guide = (REPO_ROOT / "docs" / "INSTRUCTOR.md").read_text()
    assert not agenda_problems(guide), agenda_problems(guide)
    ninety = guide[guide.index("**90 minutes"):guide.index("**3 hours")]
    rows = re.findall(r"^\| (\d):(\d\d) \|", ninety, re.M)
    assert [60 * int(h) + int(m) for h, m in rows][-1] + 10 <= 90, "the 90-minute agenda's last row ends in time"
    assert "| homework |" in ninety and "| homework |" in guide[guide.index("**3 hours"):]


def test_an_agenda_figure_left_behind_is_named():
    guide = (REPO_ROOT / "docs" / "INSTRUCTOR.md").read_text()
    figure = LAB_MAP["agenda_figures"]()["homework of the 90 minutes"]
    stale = guide.replace(f"03, 04 and 06 ({figure} minutes", f"03, 04 and 06 ({figure + 5} minutes")
    said = f"homework of the 90 minutes: the guide says {figure + 5}, the estimates {figure}"
    assert agenda_problems(stale) == [said]


def test_a_notebook_gets_longer_to_study_when_it_gains_an_exercise(tmp_path):
    estimate = LAB_MAP["estimate"]
    source = next(p for p in NOTEBOOKS if p.name.startswith("02"))
    before = estimate(source, "under a minute")
    nb = read(source)
    nb.cells.append(nbformat.v4.new_markdown_cell(" ".join(["word"] * 300)))
    (tmp_path / "solutions").mkdir()
    for solution in (REPO_ROOT / "notebooks" / "solutions").glob("ex02_*.py"):
        shutil.copy(solution, tmp_path / "solutions" / solution.name)
    nbformat.write(nb, tmp_path / source.name)
    after = estimate(tmp_path / source.name, "under a minute")
    assert after.reading == pytest.approx(before.reading + 2) and after.exercises == before.exercises
    nb.cells.append(nbformat.v4.new_code_cell("pass", metadata={"tags": ["exercise", "ex02_9"]}))
    nbformat.write(nb, tmp_path / source.name)
    with pytest.raises(ValueError, match="no stars for ex02_9"):
        estimate(tmp_path / source.name, "under a minute")
