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
    (tmp_path / "a.bin").write_bytes(b"3")
    with pytest.raises(ChecksumMismatchError, match="a.bin: its sha256"):
        verify_checksums(tmp_path)
    write_checksums(tmp_path)
    (tmp_path / "b.bin").unlink()
    with pytest.raises(ChecksumMismatchError, match="b.bin: it is listed in SHA256SUMS but missing"):
        verify_checksums(tmp_path)
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
