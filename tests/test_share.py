"""labutils.share: a model folder that round-trips offline, with checksums that catch any change."""
from __future__ import annotations

import pytest
import torch

from labutils.checkpoint import ChecksumMismatchError, ChecksumMissingError
from labutils.share import HubNet, model_card, verify_checksums, write_checksums


def test_a_model_folder_round_trips_offline_with_its_preprocessing(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    torch.manual_seed(0)
    model = HubNet(num_classes=10, mean=0.5, std=0.25)
    model.save_pretrained(tmp_path / "m")
    write_checksums(tmp_path / "m")
    assert verify_checksums(tmp_path / "m") == ["README.md", "config.json", "model.safetensors"]
    loaded = HubNet.from_pretrained(tmp_path / "m")
    assert (loaded.mean, loaded.std, loaded.image_size) == (0.5, 0.25, 28)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))


def test_checksums_catch_a_changed_a_missing_file_and_a_missing_list(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"1")
    (tmp_path / "b.bin").write_bytes(b"2")
    write_checksums(tmp_path)
    assert verify_checksums(tmp_path, required=()) == ["a.bin", "b.bin"]
    (tmp_path / "a.bin").write_bytes(b"3")
    with pytest.raises(ChecksumMismatchError, match="a.bin: its sha256"):
        verify_checksums(tmp_path, required=())
    write_checksums(tmp_path)
    (tmp_path / "b.bin").unlink()
    with pytest.raises(ChecksumMismatchError, match="b.bin: it is listed in SHA256SUMS but missing"):
        verify_checksums(tmp_path, required=())
    (tmp_path / "SHA256SUMS").unlink()
    with pytest.raises(ChecksumMissingError, match="no SHA256SUMS"):
        verify_checksums(tmp_path)


def test_the_model_card_states_the_measured_accuracy_and_the_setup():
    card = model_card(test_accuracy=0.9911, config={"seed": 0, "epochs": 3, "batch_size": 256, "lr": 0.01,
                                                      "train_subset": 10_000}, parameters=61_706)
    assert card.startswith("---\nlibrary_name: save-load-lab\nlicense: cc-by-sa-3.0")
    assert "**99.11%**" in card and "a subset of 10,000" in card and "61,706 parameters" in card
    for heading in ("## Intended use and limitations", "## Data licence", "## Training"):
        assert heading in card


def _folder(tmp_path):
    torch.manual_seed(0)
    HubNet().save_pretrained(tmp_path / "m")
    write_checksums(tmp_path / "m")
    return tmp_path / "m"


def test_a_listing_that_leaves_out_a_loaded_file_proves_nothing(tmp_path):
    folder = _folder(tmp_path)
    listing = (folder / "SHA256SUMS").read_text().splitlines(keepends=True)
    for left_out in ("model.safetensors", "config.json"):
        (folder / "SHA256SUMS").write_text("".join(line for line in listing if not line.rstrip().endswith(left_out)))
        with pytest.raises(ChecksumMismatchError, match=f"does not list {left_out}"):
            verify_checksums(folder)
    (folder / "SHA256SUMS").write_text("".join(line.replace("  ", " *", 1) for line in listing))  # sha256sum -b
    assert verify_checksums(folder) == ["README.md", "config.json", "model.safetensors"]
    (folder / "SHA256SUMS").write_text("not a listing\n")
    with pytest.raises(ChecksumMismatchError, match="line 1 is not"):
        verify_checksums(folder)


def test_hashing_streams_and_the_listing_is_written_atomically(tmp_path, monkeypatch):
    from pathlib import Path

    import labutils._io

    folder = _folder(tmp_path)
    before = (folder / "SHA256SUMS").read_bytes()

    def whole_file(self):
        raise AssertionError(f"{self.name} was read into memory whole")

    monkeypatch.setattr(Path, "read_bytes", whole_file)
    assert write_checksums(folder).name == "SHA256SUMS" and verify_checksums(folder)
    published = sorted(p.name for p in folder.iterdir())
    assert published == ["README.md", "SHA256SUMS", "config.json", "model.safetensors"], \
        "no lock or temporary left in a folder that will be published"

    def crash(src, dst):
        raise OSError("the disk went away before the rename")

    monkeypatch.setattr(labutils._io.os, "replace", crash)
    (folder / "extra.txt").write_text("new file")
    with pytest.raises(OSError):
        write_checksums(folder)
    monkeypatch.undo()
    assert (folder / "SHA256SUMS").read_bytes() == before, "a failed write leaves the old listing whole"


def test_one_parser_serves_the_sidecar_the_folder_and_the_predictor():
    import inspect

    from labutils import checkpoint, share, sha256sums
    from labutils.paths import REPO_ROOT

    assert "sha256sums.parse(" in inspect.getsource(checkpoint._recorded_digests)
    assert "sha256sums.parse(" in inspect.getsource(share.verify_checksums)
    predict = (REPO_ROOT / "tools" / "predict.py").read_text()
    assert "sums.parse(" in predict and "partition(" not in predict
    assert sha256sums.parse("\\" + "a" * 64 + "  new\\nline\n" + "B" * 64 + " *bin.dat\n") == [
        ("a" * 64, "new\nline"), ("b" * 64, "bin.dat")]
    with pytest.raises(sha256sums.FormatError, match="line 2"):
        sha256sums.parse("a" * 64 + "  ok\nbroken\n")


def test_a_sidecar_in_binary_mode_verifies(tmp_path):
    from labutils.checkpoint import load_checkpoint, save_checkpoint, sidecar_path

    path = save_checkpoint({"epoch": 1}, tmp_path / "net.pt")
    sidecar = sidecar_path(path)
    sidecar.write_text(sidecar.read_text().replace("  ", " *", 1))
    assert load_checkpoint(path)["epoch"] == 1


@pytest.mark.parametrize("name", ["../secret.bin", "/etc/hostname", "sub/a.bin", "..", ".", "./a.bin"])
def test_a_listing_that_names_a_file_outside_its_folder_is_refused_before_any_hashing(tmp_path, monkeypatch, name):
    import labutils.share

    (tmp_path / "secret.bin").write_bytes(b"not part of the model")
    folder = tmp_path / "m"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.bin").write_bytes(b"1")
    (folder / "sub" / "a.bin").write_bytes(b"1")
    write_checksums(folder)
    assert verify_checksums(folder, required=()) == ["a.bin"], "a normal listing passes"
    listing = (folder / "SHA256SUMS").read_text()
    (folder / "SHA256SUMS").write_text(listing + "0" * 64 + f"  {name}\n")
    hashed, digest = [], labutils.share.sha256sums.file_digest
    monkeypatch.setattr(labutils.share.sha256sums, "file_digest", lambda f: hashed.append(f.name) or digest(f))
    with pytest.raises(ChecksumMismatchError, match=r"SHA256SUMS: it names .*, which is not a file in this folder.*"
                                                    r"Fix: .*write_checksums\(folder\)") as caught:
        verify_checksums(folder, required=())
    assert repr(name) in str(caught.value) and hashed == [], "refused before a single file was hashed"
