"""labutils.checkpoint: round trips, metadata, sidecars, inspection, devices, and diagnose."""
from __future__ import annotations

import hashlib
import os
import re

import pandas as pd
import pytest
import torch
from torch.nn.modules.utils import consume_prefix_in_state_dict_if_present

from labutils import BatchNormNet, Net
from labutils.checkpoint import (
    FORMAT, CheckpointError, diagnose, inspect_checkpoint, load_checkpoint, save_checkpoint, sidecar_path, zip_members,
)
from labutils.notebook import save_as_from_gpu
from labutils.train import TrainConfig, make_optimizer
from listing import names


def _trained_a_step() -> tuple[Net, torch.optim.Optimizer, object]:
    torch.manual_seed(0)
    model = Net()
    optimizer, scheduler = make_optimizer(model, TrainConfig(), steps_per_epoch=10)
    torch.nn.functional.cross_entropy(model(torch.randn(8, 1, 28, 28)), torch.arange(8)).backward()
    optimizer.step()
    scheduler.step()
    return model, optimizer, scheduler


def test_a_full_checkpoint_round_trips_exactly_with_its_metadata(tmp_path):
    model, optimizer, scheduler = _trained_a_step()
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
             "epoch": 1, "loss": 0.25}
    path = save_checkpoint(state, tmp_path / "sub" / "ck.pt", metadata={"mean": 0.1307, "std": 0.3081})
    assert path == tmp_path / "sub" / "ck.pt"
    loaded = load_checkpoint(path)
    assert set(loaded) == {*state, "metadata"}
    meta = loaded["metadata"]
    assert meta["format"] == FORMAT and meta["torch"] == str(torch.__version__) and meta["mean"] == 0.1307
    assert all(torch.equal(v, loaded["model"][k]) for k, v in model.state_dict().items())
    fresh = Net()
    fresh_optimizer, fresh_scheduler = make_optimizer(fresh, TrainConfig(), steps_per_epoch=10)
    fresh.load_state_dict(loaded["model"])
    fresh_optimizer.load_state_dict(loaded["optimizer"])
    fresh_scheduler.load_state_dict(loaded["scheduler"])
    assert fresh_scheduler.get_last_lr() == scheduler.get_last_lr()
    for group in optimizer.state_dict()["state"]:
        for name, value in optimizer.state_dict()["state"][group].items():
            assert torch.equal(value, fresh_optimizer.state_dict()["state"][group][name])


def test_the_sidecar_is_sha256sum_format_and_matches(tmp_path):
    path = save_checkpoint({"model": Net().state_dict()}, tmp_path / "net.pt")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert sidecar_path(path).read_text() == f"{digest}  net.pt\n"
    # what `sha256sum -c net.pt.sha256` does, without the tool (macOS has none): every listed file hashes as listed
    for line in sidecar_path(path).read_text().splitlines():
        listed, name = re.fullmatch(r"([0-9a-f]{64})  (.+)", line).groups()
        assert hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() == listed


def test_saving_again_replaces_file_and_sidecar(tmp_path):
    path = tmp_path / "net.pt"
    save_checkpoint({"epoch": 1}, path)
    save_checkpoint({"epoch": 2}, path)
    assert load_checkpoint(path)["epoch"] == 2
    assert len(sidecar_path(path).read_text().splitlines()) == 1
    assert names(tmp_path) == ["net.pt", "net.pt.sha256"]


def test_a_state_with_its_own_metadata_key_or_not_a_dict_is_refused(tmp_path):
    with pytest.raises(ValueError, match="already has a key 'metadata'"):
        save_checkpoint({"metadata": {}}, tmp_path / "a.pt")
    with pytest.raises(TypeError, match="needs a dict"):
        save_checkpoint(Net(), tmp_path / "a.pt")
    assert names(tmp_path) == []


def test_safetensors_round_trip_with_metadata_in_the_header(tmp_path):
    model = Net()
    path = save_checkpoint(model.state_dict(), tmp_path / "net.safetensors", metadata={"mean": 0.1307, "classes": 10})
    loaded = load_checkpoint(path)
    assert set(loaded) == {*model.state_dict(), "metadata"}, "the tensors, and the metadata as a .pt file returns it"
    assert all(torch.equal(v, loaded[k]) for k, v in model.state_dict().items())
    assert loaded["metadata"]["mean"] == 0.1307 and loaded["metadata"]["classes"] == 10
    summary = inspect_checkpoint(path)
    assert summary.format == "safetensors" and summary.metadata["mean"] == 0.1307 and summary.metadata["classes"] == 10
    assert summary.tensor_bytes == 61_706 * 4 and summary.checksum.startswith("ok")
    with pytest.raises(TypeError, match="safetensors holds tensors only.*'epoch' is a int"):
        save_checkpoint({"epoch": 3}, tmp_path / "x.safetensors")


def test_inspect_lists_every_tensor_without_reading_the_data(tmp_path):
    model, optimizer, _ = _trained_a_step()
    path = save_checkpoint({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 4},
                           tmp_path / "ck.pt", metadata={"note": "hi"})
    summary = inspect_checkpoint(path)
    table = summary.table.set_index("key")
    assert table.loc["model.fc1.weight", "shape"] == (120, 400) and table.loc["model.fc1.weight", "bytes"] == 192_000
    assert table.loc["epoch", "kind"] == "int" and table.loc["epoch", "value"] == "4"
    assert summary.tensor_bytes == 3 * 61_706 * 4 + 10 * 4  # weights, Adam's two moments, ten step counters
    assert summary.metadata["note"] == "hi" and "metadata.note" not in table.index
    assert summary.format == "torch.save zip archive" and summary.checksum.startswith("ok")
    assert "ck.pt" in str(summary) and "<table" in summary._repr_html_()


def test_zip_members_one_entry_per_storage(tmp_path):
    path = tmp_path / "net.pt"
    torch.save(Net().state_dict(), path)
    members = zip_members(path)
    assert members["member"].str.endswith("data.pkl").sum() == 1
    assert members["member"].str.contains(r"/data/\d+$").sum() == 10
    assert members.loc[members["member"].str.contains(r"/data/\d+$"), "bytes"].sum() == 61_706 * 4


@pytest.mark.skipif(torch.cuda.is_available(), reason="the error arises only where CUDA is missing")
def test_a_cuda_checkpoint_loads_on_a_cpu_only_machine_with_map_location(tmp_path):
    torch.manual_seed(0)
    torch.save(Net().state_dict(), tmp_path / "cpu.pt")
    path = tmp_path / "cuda.pt"
    assert save_as_from_gpu(tmp_path / "cpu.pt", path) == "saved on the CPU with cuda:0 labels"
    with pytest.raises(RuntimeError, match="CUDA device but torch.cuda.is_available"):
        torch.load(path, weights_only=True)
    with pytest.raises(CheckpointError, match="map_location='cpu'"):
        load_checkpoint(path, verify=False, map_location=None)
    torch.manual_seed(0)
    expected = Net().state_dict()
    on_cpu = load_checkpoint(path, verify=False)
    assert all(v.device.type == "cpu" and torch.equal(v, expected[k]) for k, v in on_cpu.items())
    on_meta = load_checkpoint(path, verify=False, map_location="meta")
    assert all(v.is_meta and v.shape == expected[k].shape for k, v in on_meta.items())


# --- diagnose --------------------------------------------------------------------------------------------

def _problems(model, state_dict) -> dict[str, tuple[str, str]]:
    table = diagnose(model, state_dict)
    return {row.key: (row.problem, row._5) for row in table.itertuples()}


def test_diagnose_finds_nothing_when_everything_matches():
    assert diagnose(Net(), Net().state_dict()).empty


@pytest.mark.parametrize("prefix, cause", [("module.", "DataParallel"), ("_orig_mod.", "torch.compile"),
                                           ("model.", "Lightning"), ("backbone.", "wrapped in another module")])
def test_diagnose_names_a_prefix_and_the_fix_works(prefix, cause):
    state = {prefix + k: v for k, v in Net().state_dict().items()}
    table = diagnose(Net(), state)
    assert len(table) == 20 and set(table["problem"]) == {"missing", "unexpected"}
    assert table["likely cause"].str.contains(cause).all()
    assert table["fix"].str.contains(f"consume_prefix_in_state_dict_if_present(state_dict, {prefix!r})",
                                     regex=False).all()
    consume_prefix_in_state_dict_if_present(state, prefix)
    assert diagnose(Net(), state).empty


def test_diagnose_real_wrappers():
    model = Net()
    assert diagnose(model, torch.nn.DataParallel(model).state_dict())["likely cause"].str.contains("DataParallel").all()
    assert diagnose(model, torch.compile(model).state_dict())["likely cause"].str.contains("torch.compile").all()
    wrapped = torch.nn.DataParallel(Net())
    assert diagnose(wrapped, model.state_dict())["likely cause"].str.contains("the model is wrapped").all()


def test_diagnose_a_changed_head():
    problems = _problems(Net(num_classes=5), Net().state_dict())
    assert set(problems) == {"fc3.weight", "fc3.bias"}
    assert all(p == "wrong shape" and "different head" in c and "10 outputs" in c and "5" in c
               for p, c in problems.values())


def test_diagnose_a_different_architecture():
    problems = _problems(BatchNormNet(), Net().state_dict())
    assert {k for k, (p, _) in problems.items()} == {k for k in BatchNormNet().state_dict() if k.startswith("bn")}
    assert all(p == "missing" and "the model has a layer the file lacks" in c for p, c in problems.values())
    problems = _problems(Net(), BatchNormNet().state_dict())
    assert all(p == "unexpected" and "the file has a layer the model lacks" in c for p, c in problems.values())
    renamed = {k.replace("fc", "dense"): v for k, v in Net().state_dict().items()}
    causes = {c for _, c in _problems(Net(), renamed).values()}
    assert causes == {"a different architecture: the file has other layers (renamed or another model class)",
                      "a different architecture: the model has other layers (renamed or another model class)"}


def test_diagnose_a_full_checkpoint_passed_instead_of_its_state_dict():
    table = diagnose(Net(), {"model": Net().state_dict(), "epoch": 3})
    assert list(table["problem"]) == ["not a state_dict"] and "checkpoint['model']" in table["fix"][0]


def test_diagnose_shows_every_cause_and_fix_whole_as_text_and_html():
    """pandas cuts a cell at 50 characters ("e.g. Bat..."): a learner must read the whole fix."""
    table = diagnose(BatchNormNet(), Net().state_dict()).head(2)
    fix = table["fix"].iloc[0]
    assert len(fix) > 60 and fix in repr(table) and fix in table._repr_html_() and "..." not in repr(table)
    plain = pd.DataFrame(table)  # the same rows as a plain DataFrame: pandas cuts them, so the check can say no
    assert fix not in repr(plain) and "..." in repr(plain)


def test_diagnose_a_changed_dtype():
    state = {k: v.half() for k, v in Net().state_dict().items()}
    assert set(diagnose(Net(), state)["problem"]) == {"different dtype"}


def test_a_saved_checkpoint_gets_the_usual_permissions_not_the_temporary_files(tmp_path):
    old = os.umask(0o022)
    try:
        path = save_checkpoint({"epoch": 1}, tmp_path / "net.pt")
        assert path.stat().st_mode & 0o777 == 0o644 and sidecar_path(path).stat().st_mode & 0o777 == 0o644
        path.chmod(0o600)
        save_checkpoint({"epoch": 2}, path)
        assert path.stat().st_mode & 0o777 == 0o600, "saving again keeps the permissions the file had"
    finally:
        os.umask(old)


def test_saving_over_a_file_without_a_usable_sidecar_works_and_keeps_it_verifiable(tmp_path, monkeypatch):
    path = tmp_path / "net.pt"
    torch.save({"epoch": 1}, path)  # plain torch.save: no sidecar
    old_digest = hashlib.sha256(path.read_bytes()).hexdigest()
    seen = []
    real_replace = os.replace

    def look_before_replacing(src, dst):
        if str(dst) == str(path):  # the moment before the rename: the old file must still verify
            seen.append(sidecar_path(path).read_text())
        return real_replace(src, dst)

    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", look_before_replacing)
        save_checkpoint({"epoch": 2}, path)
    assert old_digest in seen[0], "during the rename the sidecar accepts the old file too"
    sidecar_path(path).write_text("damaged\n")
    save_checkpoint({"epoch": 3}, path)  # a damaged sidecar does not block the next save
    assert load_checkpoint(path)["epoch"] == 3


def test_a_checkpoint_copied_under_another_name_with_its_sidecar_still_verifies(tmp_path):
    import shutil

    path = save_checkpoint({"epoch": 7}, tmp_path / "net.pt")
    shutil.copy(path, tmp_path / "best.pt")
    shutil.copy(sidecar_path(path), sidecar_path(tmp_path / "best.pt"))
    assert load_checkpoint(tmp_path / "best.pt")["epoch"] == 7
