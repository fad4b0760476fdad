"""Net and BatchNormNet: the seed's layer names, the shapes for MNIST, and the state_dict table."""
from __future__ import annotations

import pytest
import torch

from labutils import BatchNormNet, Net, state_dict_table

NET_KEYS = [f"{layer}.{kind}" for layer in ("conv1", "conv2", "fc1", "fc2", "fc3") for kind in ("weight", "bias")]


def test_net_has_the_seed_layers_and_shapes():
    net = Net()
    assert list(net.state_dict()) == NET_KEYS
    assert (net.conv1.in_channels, net.conv1.out_channels, net.conv1.kernel_size) == (1, 6, (5, 5))
    assert (net.conv2.in_channels, net.conv2.out_channels, net.conv2.kernel_size) == (6, 16, (5, 5))
    assert (net.fc1.in_features, net.fc1.out_features) == (16 * 5 * 5, 120)
    assert (net.fc2.in_features, net.fc2.out_features, net.fc3.out_features) == (120, 84, 10)
    assert sum(p.numel() for p in net.parameters()) == 61_706


def test_net_takes_mnist_and_refuses_other_sizes():
    assert Net()(torch.zeros(5, 1, 28, 28)).shape == (5, 10)
    assert Net(num_classes=3)(torch.zeros(2, 1, 28, 28)).shape == (2, 3)
    net, reached = Net(), []
    net.fc1.register_forward_pre_hook(lambda module, args: reached.append(tuple(args[0].shape)))
    with pytest.raises(RuntimeError):  # torch's wording is torch's: the lab's fact is where it stops, and why
        net(torch.zeros(1, 1, 32, 32))
    assert reached == [(1, 16 * 6 * 6)] and net.fc1.in_features == 16 * 5 * 5, "a 32×32 input must not fit fc1"


def test_batchnorm_variant_has_buffers_and_dropout():
    model = BatchNormNet()
    buffers = [name for name, _ in model.named_buffers()]
    assert buffers == [f"bn{i}.{b}" for i in (1, 2) for b in ("running_mean", "running_var", "num_batches_tracked")]
    # a different architecture: the plain Net refuses its state_dict and names the extra keys
    with pytest.raises(RuntimeError) as refused:
        Net().load_state_dict(model.state_dict())
    assert all(f"bn{i}.weight" in str(refused.value) for i in (1, 2)), str(refused.value)
    extra = Net().load_state_dict(model.state_dict(), strict=False)
    assert extra.missing_keys == [] and extra.unexpected_keys == [
        f"bn{i}.{b}" for i in (1, 2) for b in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")]
    model.eval()
    x = torch.randn(3, 1, 28, 28)
    assert model(x).shape == (3, 10)
    assert torch.equal(model(x), model(x))
    model.train()
    assert not torch.equal(model(x), model(x)), "Dropout must act in training mode"


def test_state_dict_table_counts_parameters_and_buffers():
    table = state_dict_table(BatchNormNet())
    assert list(table.index) == list(BatchNormNet().state_dict())
    assert table.loc["bn1.num_batches_tracked", "kind"] == "buffer"
    assert table.loc["bn1.num_batches_tracked", "dtype"] == "int64"
    assert table.loc["bn1.num_batches_tracked", "bytes"] == 8
    assert table.loc["fc1.weight", "shape"] == (120, 400)
    assert table.loc[table["kind"] == "parameter", "elements"].sum() == 61_750
    assert table["bytes"].sum() == 4 * (61_750 + 44) + 2 * 8
