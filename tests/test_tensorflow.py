"""Notebook 07's TensorFlow section: optional, so without TensorFlow it says how to add it and skips, without error."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from labutils.paths import REPO_ROOT
from notebook_files import NOTEBOOK_DIR, read

NOTEBOOK = NOTEBOOK_DIR / "07_deploy_and_share.ipynb"
GUARD = "c32b"  # the cell that imports TensorFlow or says that it is missing
# TensorFlow's own lines on stderr (C++ logging, absl), which a kernel shows in the cell's output
TENSORFLOW_NOISE = re.compile(r"oneDNN|cpu_feature_guard|absl::InitializeLog|^[IWE]\d{4} \d\d:\d\d|"
                              r"TF-TRT|rebuild TensorFlow", re.M)


def section_cells() -> list:
    """The code cells of section 7, from its heading to the summary."""
    cells = read(NOTEBOOK).cells
    start = next(i for i, c in enumerate(cells) if c.cell_type == "markdown" and c.source.startswith("## 7. "))
    end = next(i for i, c in enumerate(cells) if c.cell_type == "markdown" and c.source.startswith("## Summary"))
    return [c for c in cells[start:end] if c.cell_type == "code"]


def run_without_tensorflow(code: str) -> subprocess.CompletedProcess:
    """Run `code` in a new Python in which `import tensorflow` fails, as it does where the extra is not installed."""
    blocked = "import sys\nsys.modules['tensorflow'] = None  # `import tensorflow` raises ImportError\n"
    return subprocess.run([sys.executable, "-c", blocked + code], cwd=NOTEBOOK_DIR, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_the_section_starts_with_its_guard_and_guards_every_later_cell():
    cells = section_cells()
    assert cells[0].id == GUARD and "import tensorflow" in cells[0].source and "except ImportError:" in cells[0].source
    assert len(cells) >= 6
    unguarded = [c.id for c in cells[1:] if not c.source.startswith("if HAVE_TENSORFLOW:\n")]
    assert unguarded == [], f"cells of section 7 that would fail without TensorFlow: {unguarded}"


def test_without_tensorflow_the_section_prints_one_line_and_runs_without_error():
    setup = "import os\n"  # the guard cell uses only os from the notebook's setup
    code = setup + "\n".join(c.source for c in section_cells()) + "\nprint('HAVE_TENSORFLOW =', HAVE_TENSORFLOW)\n"
    result = run_without_tensorflow(code)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1] == "HAVE_TENSORFLOW = False" and len(lines) == 2, result.stdout
    message = lines[0]
    assert message.startswith("TensorFlow is optional and not installed here") and "`make tensorflow`" in message
    assert "274 MB" in message and result.stderr == "", (message, result.stderr)


def test_the_command_the_message_names_exists_and_installs_the_pinned_extra():
    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^tensorflow:", makefile, re.M)
    assert re.search(r"^test:.*\btensorflow\b", makefile, re.M), "make test installs the extra, so nbval runs it"
    pins = (REPO_ROOT / "requirements-tensorflow.txt").read_text(encoding="utf-8")
    assert re.search(r"^tensorflow-cpu==2\.21\.0\b", pins, re.M) and "274 MB" in pins


def test_the_exercise_and_its_check_work_without_tensorflow():
    """ex07_3 is NumPy only: its check says ✓ and ✗ where TensorFlow is missing."""
    nb = read(NOTEBOOK)
    skeleton = next(c for c in nb.cells if "ex07_3" in c.metadata.get("tags", []))
    solution = (REPO_ROOT / "notebooks" / "solutions" / "ex07_3.py").read_text(encoding="utf-8")
    check = "\nlabutils.checks.ex07_3(dense_kernel_for_keras)\n"
    code = ("import numpy as np\nimport labutils.checks\n" + skeleton.source + check + solution + check
            + "print(sys.modules['tensorflow'] is not None)\n")
    result = run_without_tensorflow(code)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("✗ ex07_3: dense_kernel_for_keras returned None"), result.stdout
    assert lines[1].startswith("✓ ex07_3:") and lines[2] == "False", result.stdout


def test_the_saved_outputs_have_no_tensorflow_log_lines_and_show_the_section_ran():
    outputs = {c.id: "".join(o.get("text", "") for o in c.outputs) for c in section_cells()}
    noisy = {cid: text for cid, text in outputs.items() if TENSORFLOW_NOISE.search(text)}
    assert noisy == {}, noisy
    assert outputs[GUARD].startswith("TensorFlow 2."), "the saved notebook was run with TensorFlow installed"
    assert not any(o.output_type == "error" for c in section_cells() for o in c.outputs)
    assert "/work/" not in json.dumps(outputs) and "/tmp/" not in json.dumps(outputs)
