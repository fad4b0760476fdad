"""The capstone's step 2 asks for the sidecar to arrive by a rename too: a sidecar written in place is refused, and
the message says why (a crash while writing it makes the good checkpoint beside it fail verification)."""
from __future__ import annotations

from test_exercises import SOLUTIONS, _run

SOLUTION = (SOLUTIONS / "ex12_2.py").read_text()
SIDECAR_IN_PLACE = SOLUTION.replace(
    '    write_atomically(sidecar, lambda f: f.write(f"{digest}  {path.name}\\n".encode()))',
    '    sidecar.write_text(f"{digest}  {path.name}\\n")')


def test_a_sidecar_written_in_place_is_refused(capsys):
    assert SIDECAR_IN_PLACE != SOLUTION
    ok, out = _run("ex12_2", SIDECAR_IN_PLACE, capsys)
    assert ok is False and "step-00000002.pt.sha256 was written in place" in out and "os.replace" in out, out


def test_the_solution_writes_both_files_by_renames(capsys):
    ok, out = _run("ex12_2", SOLUTION, capsys)
    assert ok is True, out
