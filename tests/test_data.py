"""The bundled MNIST: verified on first use, and every kind of damage reported clearly."""
from __future__ import annotations

import gzip
import hashlib
import re
import subprocess
import sys

import pytest
import torch

from labutils import DataError, MEAN, STD, mnist, mnist_tensors, verify_mnist
from labutils.data import RESTORE, SHA256, raw_dir
from labutils.paths import REPO_ROOT
from listing import names

LABELS = "t10k-labels-idx1-ubyte"


def test_sums_file_matches_the_code():
    listed = dict(reversed(line.split()) for line in (REPO_ROOT / "data" / "SHA256SUMS").read_text().splitlines()
                  if line and not line.startswith("#"))
    assert listed == SHA256


def test_canonical_md5_of_the_decompressed_files():
    canonical = {"train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
                 "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
                 "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
                 "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637"}
    raw = verify_mnist()
    for name, md5 in canonical.items():
        assert hashlib.md5((raw / name).read_bytes()).hexdigest() == md5, name


def test_fresh_copy_is_extracted_and_verified(data_copy):
    raw = verify_mnist(data_copy)
    assert names(raw) == sorted(SHA256)
    assert not list(raw.glob(".*tmp*")), "no temporary file may be left behind"


def test_dataset_and_tensors_agree():
    dataset = mnist(train=False)
    images, labels = mnist_tensors(train=False)
    assert len(dataset) == len(labels) == 10_000
    assert images.shape == (10_000, 1, 28, 28) and images.dtype == torch.float32
    for i in (0, 1234, 9999):
        image, label = dataset[i]
        assert torch.equal(image, images[i]) and label == labels[i]
    # normalised: the training set has mean 0 and std 1 once MEAN and STD are applied
    train, _ = mnist_tensors(train=True)
    assert abs(train.mean().item()) < 1e-3 and abs(train.std().item() - 1) < 1e-3
    assert (MEAN, STD) == (0.1307, 0.3081)


@pytest.mark.parametrize("train", [True, False], ids=["train", "test"])
def test_the_labs_idx_reader_reads_what_torchvision_reads(train):
    from labutils.data import _raw_tensors, data_dir

    dataset = mnist(train=train, transform=None)
    images, labels = _raw_tensors(train, str(data_dir().resolve()))
    assert torch.equal(images, dataset.data) and images.dtype == torch.uint8
    assert torch.equal(labels, dataset.targets) and labels.dtype == torch.int64


@pytest.mark.parametrize("damage, message", [
    (lambda b: b"\x00\x00\x0d" + b[3:], "is not an IDX file of unsigned bytes"),  # float data, not bytes
    (lambda b: b[:2], "is not an IDX file of unsigned bytes"),
    (lambda b: b[:-1], "holds 9999 bytes of data where its header promises (10000,)"),
])
def test_the_idx_reader_refuses_another_file_by_name(tmp_path, damage, message):
    from labutils.data import read_idx

    path = tmp_path / LABELS
    path.write_bytes(damage((raw_dir() / LABELS).read_bytes()))
    with pytest.raises(DataError, match=re.escape(message)) as caught:
        read_idx(path)
    assert LABELS in str(caught.value) and "git checkout data/" in str(caught.value)


def test_importing_labutils_leaves_torchvision_pandas_and_matplotlib_for_later():
    """Every kernel, script and child process imports labutils; these three cost about 2 s there, unused."""
    code = ("import sys, labutils; labutils.mnist_tensors(train=False); "
            "print([m for m in ('torchvision', 'pandas', 'matplotlib') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_tensors_are_copies_of_the_cached_data():
    _, labels = mnist_tensors(train=False)
    labels[:] = 0
    assert mnist_tensors(train=False)[1].bincount().count_nonzero() == 10


def test_subset_and_its_bounds():
    images, labels = mnist_tensors(train=True, subset=500)
    assert len(images) == len(labels) == 500
    with pytest.raises(ValueError, match="subset=60001 is out of range"):
        mnist_tensors(train=True, subset=60_001)


def _message(data_copy) -> str:
    with pytest.raises(DataError) as caught:
        verify_mnist(data_copy)
    return str(caught.value)


def test_missing_file(data_copy):
    (data_copy / f"{LABELS}.gz").unlink()
    message = _message(data_copy)
    assert f"{LABELS}.gz is missing" in message
    assert SHA256[LABELS] in message and RESTORE in message and "git checkout data/" in message


def test_truncated_file(data_copy):
    gz = data_copy / f"{LABELS}.gz"
    gz.write_bytes(gz.read_bytes()[:2000])
    message = _message(data_copy)
    assert f"{LABELS}.gz is damaged" in message and "EOFError" in message
    assert SHA256[LABELS] in message and "git checkout data/" in message
    assert not (raw_dir(data_copy) / LABELS).exists(), "a damaged file must not leave a partial raw file"


def test_not_gzip(data_copy):
    (data_copy / f"{LABELS}.gz").write_bytes(b"this is not gzip at all")
    assert "is damaged" in _message(data_copy)


def test_wrong_content(data_copy):
    content = gzip.decompress((data_copy / f"{LABELS}.gz").read_bytes())
    changed = content[:-1] + bytes([content[-1] ^ 1])  # one label changed
    (data_copy / f"{LABELS}.gz").write_bytes(gzip.compress(changed))
    message = _message(data_copy)
    actual = hashlib.sha256(changed).hexdigest()
    assert "does not hold the canonical MNIST" in message
    assert actual in message and SHA256[LABELS] in message and "git checkout data/" in message


def test_damaged_raw_file_is_extracted_again(data_copy, capsys):
    raw = verify_mnist(data_copy)
    target = raw / LABELS
    target.write_bytes(b"\0" * 100)
    import labutils.data
    labutils.data._verified.clear()  # as in a new Python process
    verify_mnist(data_copy)
    assert hashlib.sha256(target.read_bytes()).hexdigest() == SHA256[LABELS]
    assert f"{LABELS} is damaged" in capsys.readouterr().err


def test_no_network_without_download(data_copy, monkeypatch):
    """With a file missing and download=False, the error comes from the lab, not from a download attempt."""
    import torchvision.datasets.utils as tv_utils

    def refuse(*args, **kwargs):
        raise AssertionError("the lab tried to download")

    monkeypatch.setattr(tv_utils, "download_url", refuse)
    monkeypatch.setattr(tv_utils, "download_and_extract_archive", refuse)
    (data_copy / f"{LABELS}.gz").unlink()
    with pytest.raises(DataError, match="is missing"):
        mnist(train=False, root=data_copy)
