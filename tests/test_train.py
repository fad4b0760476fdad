"""Seeding, devices, configuration checks and the training loop."""
from __future__ import annotations

import pytest
import torch

from labutils import BatchNormNet, Net, TrainConfig, evaluate, fit, mnist_tensors, pick_device, predict, seed_everything

SMALL = dict(epochs=1, batch_size=64, train_subset=1000)


def _train(seed: int) -> tuple[Net, list[dict]]:
    config = TrainConfig(seed=seed, **SMALL)
    seed_everything(seed)
    model = Net()
    train = mnist_tensors(True, subset=config.train_subset)
    test = tuple(t[:500] for t in mnist_tensors(False))
    return model, fit(model, train, test, config, progress=False)


def _same(a: Net, b: Net) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_same_seed_gives_identical_weights_and_other_seeds_differ():
    (a, history_a), (b, history_b), (c, _) = _train(0), _train(0), _train(1)
    assert _same(a, b) and history_a[0]["batch_losses"] == history_b[0]["batch_losses"]
    assert not _same(a, c)


def test_fit_learns_and_records_history():
    model, history = _train(0)
    assert [h["epoch"] for h in history] == [1]
    h = history[0]
    assert len(h["batch_losses"]) == 16  # 1000 images in batches of 64
    assert h["test_acc"] > 0.5, "1,000 images for one epoch already beat chance (10 %) by far"
    # the epoch's loss is the mean over images (1000 = 15 batches of 64 and one of 40), and it fell below the start
    weights = [64] * 15 + [40]
    assert h["loss"] == pytest.approx(sum(w * b for w, b in zip(weights, h["batch_losses"])) / 1000)
    assert h["batch_losses"][-1] < h["batch_losses"][0] < 2.4


def test_pick_device():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device("auto").type in {"cpu", "cuda", "mps"}
    with pytest.raises(ValueError, match="DEVICE='gpu' is not a device"):
        pick_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="DEVICE='cuda' is not available on this machine"):
            pick_device("cuda")


@pytest.mark.parametrize("kwargs, message", [
    (dict(epochs=0), "epochs=0 is not allowed"),
    (dict(epochs=1.5), "epochs=1.5 is not allowed"),
    (dict(batch_size=-8), "batch_size=-8 is not allowed"),
    (dict(lr=0), "lr=0 is not allowed"),
    (dict(train_subset=-1), "train_subset=-1 is not allowed"),
])
def test_config_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)


def test_config_accepts_defaults():
    assert TrainConfig().to_dict() == {"seed": 0, "epochs": 3, "batch_size": 256, "lr": 0.01, "train_subset": None}


@pytest.mark.parametrize("mode", [True, False])
def test_evaluate_uses_eval_mode_and_restores_the_mode(mode):
    torch.manual_seed(0)
    model = BatchNormNet().train(mode)
    images, labels = torch.randn(50, 1, 28, 28), torch.randint(0, 10, (50,))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    first = predict(model, images, batch_size=16)
    # eval mode: no Dropout, batch statistics unused, so the batch size changes only rounding
    assert torch.allclose(first, predict(model, images), atol=1e-5)
    assert model.training == mode
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items()), "no buffer may change"
    by_hand = (predict(model, images).argmax(1) == labels).float().mean().item()
    assert evaluate(model, images, labels)["accuracy"] == pytest.approx(by_hand)
    assert model.training == mode
