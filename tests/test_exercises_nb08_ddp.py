"""Exercise 08.4 (map_location for every process) and notebook 08's section 5 script (scripts/ddp_save.py): the check
says yes to the solution, no to the skeleton, to what a learner would copy from the notebook's printed cells and to
the plausible half answers, naming what is wrong; the script shows what the notebook says it shows."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

import pytest
import torch

from labutils.paths import REPO_ROOT
from test_exercises import SOLUTIONS, _exercise, _run

SOLUTION_08_4 = (SOLUTIONS / "ex08_4.py").read_text()

# As copied from section 5: the dict of the map_location cell (and its prose), keyed by the saved label cuda:0.
COPIED_08_4 = '''def map_location_for(rank, local_rank, gpus):
    return {"cuda:0": f"cuda:{local_rank}"}
'''

# The dict with "cpu" where there is no GPU: still only the one label.
COPIED_WITH_CPU_08_4 = '''def map_location_for(rank, local_rank, gpus):
    return {"cuda:0": f"cuda:{local_rank}"} if gpus else "cpu"
'''

# The global rank instead of the local one: right on one machine, wrong on the second machine of a job.
GLOBAL_RANK_08_4 = SOLUTION_08_4.replace('f"cuda:{local_rank}"', 'f"cuda:{rank}"')

# The rank's GPU always, also on a machine without one.
NO_CPU_08_4 = '''def map_location_for(rank, local_rank, gpus):
    return f"cuda:{local_rank}"
'''

# "cpu" always: loads everywhere, but never onto the process's own GPU, which the exercise asks for.
CPU_ALWAYS_08_4 = '''def map_location_for(rank, local_rank, gpus):
    return "cpu"
'''

# A function, as torch.load also takes: moves GPU storages to the process's GPU, keeps CPU ones. Right.
FUNCTION_08_4 = '''def map_location_for(rank, local_rank, gpus):
    if not gpus:
        return "cpu"
    return lambda storage, location: storage.cuda(local_rank) if location.startswith("cuda") else storage
'''

# A dict listing every label a machine of 8 GPUs writes, and a device object: right too.
EVERY_LABEL_08_4 = '''import torch
def map_location_for(rank, local_rank, gpus):
    if not gpus:
        return torch.device("cpu")
    return {f"cuda:{i}": f"cuda:{local_rank}" for i in range(8)}
'''


@pytest.mark.parametrize(("code", "hint"), [
    (COPIED_08_4, "A dict maps only the locations it lists"),
    (COPIED_WITH_CPU_08_4, "A dict maps only the locations it lists"),
    (GLOBAL_RANK_08_4, "local_rank (1) numbers them on their machine"),
    (NO_CPU_08_4, "on a machine without a GPU (gpus=0)"),
    (CPU_ALWAYS_08_4, "it belongs on cuda:1"),
], ids=["copied from section 5", "the copy with cpu", "global rank", "no CPU fallback", "cpu always"])
def test_ex08_4_refuses(code, hint, capsys):
    ok, out = _run("ex08_4", code, capsys)
    assert ok is False and out.startswith("✗") and hint in out, out


@pytest.mark.parametrize("code", [SOLUTION_08_4, FUNCTION_08_4, EVERY_LABEL_08_4],
                         ids=["solution", "a function", "a dict of every label"])
def test_ex08_4_accepts_every_right_form(code, capsys):
    ok, out = _run("ex08_4", code, capsys)
    assert ok is True and "cuda:local_rank" in out, out


def test_ex08_4_skeleton(capsys):
    ok, out = _run("ex08_4", _exercise("ex08_4")[1], capsys)
    assert ok is False and "returned None" in out, out


def test_ex08_4_check_leaves_torch_serialization_alone(capsys):
    """The check swaps torch.serialization.default_restore_location to record instead of move: it puts it back."""
    before = torch.serialization.default_restore_location
    _run("ex08_4", NO_CPU_08_4, capsys)
    _run("ex08_4", SOLUTION_08_4, capsys)
    assert torch.serialization.default_restore_location is before


@pytest.fixture(scope="module")
def ddp_reports(tmp_path_factory):
    """Run scripts/ddp_save.py once in two processes, as notebook 08 does; return each rank's report."""
    folder = tmp_path_factory.mktemp("ddp")
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
         str(REPO_ROOT / "notebooks" / "scripts" / "ddp_save.py"), str(folder), "--timeout=1"],
        capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return folder, [json.loads((folder / f"ddp-rank-{rank}.json").read_text()) for rank in range(2)]


def test_ddp_script_shows_each_mistake_and_its_fix(ddp_reports):
    folder, (rank0, rank1) = ddp_reports
    assert rank0["started_from_rank0_weights"] and rank1["started_from_rank0_weights"]
    assert rank0["loaded_equals_own_model"] and rank1["loaded_equals_own_model"]
    assert rank0["loaded_sum"] == rank1["loaded_sum"]
    assert rank0["no_barrier_loaded_equals_own_model"] and not rank1["no_barrier_loaded_equals_own_model"]
    assert "Timed out waiting 1000ms" in rank0["barrier_error"] and "barrier_error" not in rank1
    assert "Rank 1 failed to pass monitoredBarrier in 1000 ms" in rank0["monitored_barrier_error"]
    for report in (rank0, rank1):
        assert report["in_turn"] == [1] * 8
        assert 0 in report["at_once"] and 1 in report["at_once"]  # loads, and mixes both ranks
        assert report["per_rank_files"] == [[0] * 8, [1] * 8]
        assert report["atomic_rename"] in ([0] * 8, [1] * 8)
        assert report["map_none"] == ["cuda:0"] and report["map_cpu"] == ["cpu"]
        assert report["map_dict"] == [f"cuda:{report['local_rank']}"]
        assert "on a CUDA device" in report["load_without_gpu_error"] and report["cpu_load_equals_model"]
    with zipfile.ZipFile(folder / "shared.pt") as archive:
        assert archive.testzip() is not None  # the mixed file: torch.load reads it, a zip tool sees the bad CRC
    assert not any(folder.glob("*.tmp-rank*")), "the temporaries were renamed away"
