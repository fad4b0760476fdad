"""docs/CHEATSHEET.md's code runs, top to bottom, on the pinned torch: a sample that goes stale fails here."""
from __future__ import annotations

import re
import warnings

import pytest

from labutils.paths import REPO_ROOT

SHEET = REPO_ROOT / "docs" / "CHEATSHEET.md"


def code_blocks(markdown: str) -> list[tuple[int, str]]:
    """Each ```python block with the line it starts on."""
    return [(markdown[:m.start()].count("\n") + 2, m.group(1))
            for m in re.finditer(r"^```python\n(.*?)^```$", markdown, re.M | re.S)]


def run_sheet(markdown: str, name: str = "CHEATSHEET.md") -> dict:
    """Run every block in one namespace; an error names the block's line in the sheet."""
    namespace: dict = {"__name__": "cheatsheet"}
    for line, code in code_blocks(markdown):
        try:
            exec(compile(code, f"{name}, the block on line {line}", "exec"), namespace)
        except Exception as err:
            raise AssertionError(f"{name}: the block on line {line} fails: {type(err).__name__}: {err}") from err
    return namespace


def test_every_block_of_the_sheet_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # recorded here, so that the sheet setting it is undone afterwards
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.distributed is disabled")  # DCP in one process says so
        namespace = run_sheet(SHEET.read_text(encoding="utf-8"))
    blocks = code_blocks(SHEET.read_text(encoding="utf-8"))
    assert len(blocks) >= 12, "every API the lab teaches has a sample"
    assert namespace["start_epoch"] == 4 and tuple(namespace["logits"].shape) == (5, 10)
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == [
        "checkpoint.pt", "dcp", "lm", "lm-adapter", "net.onnx", "net.pt", "net.pt.sha256", "net.pt2", "net.safetensors",
        "numpy.pt", "shards", "trainer"]
    assert (tmp_path / "lm" / "model.safetensors.index.json").is_file()
    assert sorted(p.name for p in (tmp_path / "trainer").iterdir()) == ["checkpoint-2", "checkpoint-4"]
    assert namespace["half"].dtype == namespace["torch"].bfloat16 and not any(
        "lora" in k for k in namespace["merged"].state_dict())


def test_a_stale_sample_is_named_by_its_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sheet = ("# sheet\n\n```python\nimport torch\n```\n\ntext\n\n"
             "```python\ntorch.load('net.pt', weights_only=True)\n```\n")
    with pytest.raises(AssertionError, match=r"sheet.md: the block on line 10 fails: FileNotFoundError"):
        run_sheet(sheet, "sheet.md")
