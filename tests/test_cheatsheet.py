"""docs/CHEATSHEET.md's code runs, top to bottom, on the pinned torch: a sample that goes stale fails here."""
from __future__ import annotations

import os
import re
import signal
import warnings
from unittest import mock

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


def test_every_block_of_the_sheet_runs(sheet):
    """What the sheet's one run (the module's `sheet`) left: the names it defined and the files it wrote."""
    namespace, folder, made = sheet
    blocks = code_blocks(SHEET.read_text(encoding="utf-8"))
    assert len(blocks) >= 12, "every API the lab teaches has a sample"
    assert namespace["start_epoch"] == 4 and tuple(namespace["logits"].shape) == (5, 10)
    assert made == [
        "checkpoint.pt", "data_order.pt", "dcp", "lm", "lm-adapter", "net.onnx", "net.pt", "net.pt.sha256", "net.pt2",
        "net.safetensors", "numpy.pt", "shards", "stopped.pt", "trainer"]
    assert (folder / "lm" / "model.safetensors.index.json").is_file()
    assert sorted(p.name for p in (folder / "trainer").iterdir()) == ["checkpoint-2", "checkpoint-4"]
    assert namespace["half"].dtype == namespace["torch"].bfloat16 and not any(
        "lora" in k for k in namespace["merged"].state_dict())


def test_a_stale_sample_is_named_by_its_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sheet = ("# sheet\n\n```python\nimport torch\n```\n\ntext\n\n"
             "```python\ntorch.load('net.pt', weights_only=True)\n```\n")
    with pytest.raises(AssertionError, match=r"sheet.md: the block on line 10 fails: FileNotFoundError"):
        run_sheet(sheet, "sheet.md")


@pytest.fixture(scope="module")
def sheet(tmp_path_factory) -> tuple[dict, object, list[str]]:
    """The sheet run once for the module, top to bottom, in an empty folder: its namespace, that folder, and the
    names of what the sheet wrote there (listed before any test writes beside them)."""
    folder = tmp_path_factory.mktemp("sheet")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        patch.setenv("HF_HUB_OFFLINE", "1")  # recorded here, so that the sheet setting it is undone afterwards
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="torch.distributed is disabled")  # DCP in one process says so
            namespace = run_sheet(SHEET.read_text(encoding="utf-8"))
    return namespace, folder, sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


class Unpicklable:
    def __reduce__(self):
        raise RuntimeError("this object cannot be saved")


def test_a_failed_save_leaves_the_old_file_and_no_temporary(sheet):
    namespace, folder, _ = sheet
    torch = namespace["torch"]
    path = folder / "failing.pt"
    namespace["save_atomically"]({"a": torch.ones(3)}, str(path))
    good = path.read_bytes()
    for save in ("save_atomically", "save_checked"):
        with pytest.raises(RuntimeError, match="cannot be saved"):
            namespace[save]({"a": torch.zeros(3), "b": Unpicklable()}, str(path))
        assert path.read_bytes() == good, save
        assert not list(folder.glob("*.tmp")), f"{save} left its temporary behind"


def test_save_checked_writes_the_sidecar_atomically_and_synced(sheet):
    namespace, folder, _ = sheet
    torch = namespace["torch"]
    path = folder / "checked.pt"
    namespace["save_checked"]({"a": torch.ones(3)}, str(path))
    old_sidecar = (folder / "checked.pt.sha256").read_bytes()
    events, real_replace, real_fsync = [], os.replace, os.fsync

    def replace(src, dst):
        events.append(("rename", os.path.basename(dst)))
        return real_replace(src, dst)

    def fsync(fd):
        events.append(("fsync",))
        return real_fsync(fd)

    with mock.patch("os.replace", replace), mock.patch("os.fsync", fsync):
        namespace["save_checked"]({"a": torch.full((3,), 2.0)}, str(path))
    renames = [i for i, e in enumerate(events) if e[0] == "rename"]
    assert [events[i][1] for i in renames] == ["checked.pt", "checked.pt.sha256"], events
    assert events[renames[1] - 1] == ("fsync",), "the sidecar's bytes are synced before its rename"
    assert events[-1] == ("fsync",), "and the folder after it"
    assert namespace["load_checked"](str(path))["a"].eq(2).all()

    def crash_at_the_sidecar(src, dst):  # the disk fails as the sidecar is put in place
        if dst.endswith(".sha256"):
            raise OSError(5, "Input/output error")
        return real_replace(src, dst)

    new_sidecar = (folder / "checked.pt.sha256").read_bytes()
    with mock.patch("os.replace", crash_at_the_sidecar), pytest.raises(OSError):
        namespace["save_checked"]({"a": torch.full((3,), 3.0)}, str(path))
    assert (folder / "checked.pt.sha256").read_bytes() == new_sidecar != old_sidecar, "never a half-written sidecar"
    assert not list(folder.glob("*.tmp"))
    with pytest.raises(ValueError, match="differs"):  # the window that remains: refused, never accepted wrongly
        namespace["load_checked"](str(path))


def test_the_sigterm_recipe_saves_the_step_and_puts_the_handler_back(sheet, monkeypatch):
    namespace, folder, _ = sheet
    monkeypatch.chdir(folder)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    steps = []
    namespace["stop"]["signal"] = None
    status = namespace["train"](lambda step: steps.append(step) or (step == 5 and signal.raise_signal(signal.SIGTERM)),
                                steps=8)
    assert (status, steps) == (143, [1, 2, 3, 4, 5])
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    assert namespace["torch"].load(folder / "stopped.pt", weights_only=True)["step"] == 5
