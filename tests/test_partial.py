"""labutils.partial and the layer picker: partial loads that check their keys, freezing, optimizer state."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from labutils import Net
from labutils.checkpoint import load_checkpoint, save_checkpoint
from labutils.partial import (KeyMismatchError, OptimizerMismatchError, ShapeMismatchError, freeze,
                              load_optimizer_state, load_partial, optimizer_state, select_keys)
from labutils.widgets import LayerPicker


def _pair():
    return torch.nn.ModuleDict({"fc1": torch.nn.Linear(4, 3), "fc10": torch.nn.Linear(3, 2)})


def test_select_keys_matches_whole_layer_names():
    state = _pair().state_dict()
    assert list(select_keys(state, ["fc1"])) == ["fc1.weight", "fc1.bias"]
    assert list(select_keys(state, ["fc1.weight", "fc10"])) == ["fc1.weight", "fc10.weight", "fc10.bias"]
    assert select_keys(state, ["fc"]) == {}


def test_load_partial_allows_only_what_it_is_told():
    torch.manual_seed(0)
    source = Net().state_dict()
    model = Net()
    result = load_partial(model, select_keys(source, ["conv1", "conv2"]), allow_missing=["fc1", "fc2", "fc3"])
    assert len(result.missing_keys) == 6 and torch.equal(model.conv2.weight, source["conv2.weight"])
    with pytest.raises(KeyMismatchError,
                       match=r"would load 4 of 10 entries; nothing was loaded.*missing fc3.weight, fc3.bias"):
        load_partial(Net(), select_keys(source, ["conv1", "conv2"]), allow_missing=["fc1", "fc2"])
    with pytest.raises(KeyMismatchError, match=r"unexpected net\.conv1\.weight.*wrapped in another module"):
        load_partial(Net(), {"net." + k: v for k, v in source.items()}, allow_missing=["conv1", "conv2", "fc"])
    assert load_partial(Net(), {**source, "extra.weight": torch.zeros(1)}, allow_unexpected=["extra"])


def test_freeze_returns_the_frozen_names_and_leaves_lookalikes():
    pair = _pair()
    assert freeze(pair, ["fc1"]) == ["fc1.weight", "fc1.bias"]
    assert all(p.requires_grad for p in pair["fc10"].parameters())


def _stepped(model, optimizer):
    optimizer.zero_grad()
    F.cross_entropy(model(torch.randn(8, 1, 28, 28)), torch.arange(8) % model.fc3.out_features).backward()
    optimizer.step()


def test_optimizer_state_survives_a_checkpoint_and_resumes_exactly(tmp_path):
    torch.manual_seed(0)
    model = Net()
    adam = torch.optim.Adam(model.parameters(), lr=1e-3)
    _stepped(model, adam)
    save_checkpoint({"model": model.state_dict(), "optimizer": optimizer_state(adam, model)}, tmp_path / "ck.pt")
    saved = load_checkpoint(tmp_path / "ck.pt")
    twin = Net()
    twin.load_state_dict(saved["model"])
    twin_adam = torch.optim.Adam(twin.parameters(), lr=1e-3)
    load_optimizer_state(twin_adam, twin, saved["optimizer"])
    torch.manual_seed(1)
    _stepped(model, adam)
    torch.manual_seed(1)
    _stepped(twin, twin_adam)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), twin.state_dict().values()))


@pytest.fixture
def recorded():
    torch.manual_seed(0)
    model = Net()
    adam = torch.optim.Adam(model.parameters(), lr=1e-3)
    _stepped(model, adam)
    return optimizer_state(adam, model)


def test_another_optimizer_class_is_refused(recorded):
    model = Net()
    with pytest.raises(OptimizerMismatchError, match="from Adam, this optimizer is AdamW"):
        load_optimizer_state(torch.optim.AdamW(model.parameters(), lr=1e-3), model, recorded)
    with pytest.raises(OptimizerMismatchError, match="from Adam, this optimizer is SGD"):
        load_optimizer_state(torch.optim.SGD(model.parameters(), lr=1e-3), model, recorded)


def test_changed_or_frozen_parameters_are_refused(recorded):
    five = Net(num_classes=5)
    with pytest.raises(OptimizerMismatchError, match=r"other shape: fc3.weight \[10, 84\] → \[5, 84\]"):
        load_optimizer_state(torch.optim.Adam(five.parameters(), lr=1e-3), five, recorded)
    frozen = Net()
    freeze(frozen, ["conv1"])
    with pytest.raises(OptimizerMismatchError, match="no longer optimized: conv1.weight, conv1.bias"):
        load_optimizer_state(torch.optim.Adam([p for p in frozen.parameters() if p.requires_grad], lr=1e-3), frozen,
                             recorded)


def test_other_settings_are_refused_unless_the_new_ones_are_kept(recorded):
    model = Net()
    adam = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=0.01)
    with pytest.raises(OptimizerMismatchError, match=r"lr 0.001 → 0.0001, weight_decay 0 → 0.01"):
        load_optimizer_state(adam, model, recorded)
    load_optimizer_state(adam, model, recorded, keep_new_hyperparameters=True)
    assert adam.param_groups[0]["lr"] == 1e-4 and adam.param_groups[0]["weight_decay"] == 0.01
    assert adam.state_dict()["state"][0]["exp_avg"].abs().sum() > 0, "the moments were loaded"


def _two_groups(model, head_lr):
    """Adam with the body in a first group (lr 1e-3) and the head in a second, with its own lr."""
    body = [p for n, p in model.named_parameters() if not n.startswith("fc3.")]
    return torch.optim.Adam([{"params": body}, {"params": [model.fc3.weight, model.fc3.bias], "lr": head_lr}],
                            lr=1e-3)


def test_a_group_with_its_own_settings_is_refused_unless_they_are_kept():
    # the defaults are the same (lr 1e-3); only the second group's own lr differs, and a plain load would replace it
    torch.manual_seed(0)
    model = Net()
    adam = _two_groups(model, head_lr=1e-3)
    _stepped(model, adam)
    recorded = optimizer_state(adam, model)
    twin = Net()
    gentle = _two_groups(twin, head_lr=1e-4)
    assert gentle.defaults["lr"] == adam.defaults["lr"]
    with pytest.raises(OptimizerMismatchError, match=r"lr 0.001 → 0.0001 in group 1 \(fc3.weight, fc3.bias\)"
                                                     r".*Fix: .*keep_new_hyperparameters=True"):
        load_optimizer_state(gentle, twin, recorded)
    assert [group["lr"] for group in gentle.param_groups] == [1e-3, 1e-4] and not gentle.state, "left untouched"
    load_optimizer_state(gentle, twin, recorded, keep_new_hyperparameters=True)
    assert [group["lr"] for group in gentle.param_groups] == [1e-3, 1e-4]
    assert torch.equal(gentle.state[twin.fc3.weight]["exp_avg"], adam.state[model.fc3.weight]["exp_avg"])


def test_a_record_saved_before_the_groups_settings_were_recorded_still_loads_and_is_checked(recorded):
    old = {k: v for k, v in recorded.items() if k != "settings"}
    old["hyperparameters"] = dict(recorded["settings"][0])  # what optimizer_state recorded then: the defaults
    model = Net()
    same = torch.optim.Adam(model.parameters(), lr=1e-3)
    load_optimizer_state(same, model, old)
    assert same.state_dict()["state"][0]["exp_avg"].abs().sum() > 0, "the moments were loaded"
    gentle = torch.optim.Adam([{"params": list(model.parameters()), "lr": 1e-4}], lr=1e-3)
    with pytest.raises(OptimizerMismatchError, match=r"lr 0.001 → 0.0001 in group 0"):
        load_optimizer_state(gentle, model, old)


def test_a_resumed_lr_schedule_is_not_taken_for_other_settings():
    # a scheduler lowers the groups' lr as it runs; the resumed optimizer, built with the same lr, should take it
    torch.manual_seed(0)
    model = Net()
    adam = torch.optim.Adam(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.StepLR(adam, step_size=1, gamma=0.1)
    _stepped(model, adam)
    scheduler.step()
    recorded = optimizer_state(adam, model)
    twin = Net()
    resumed = torch.optim.Adam(twin.parameters(), lr=1e-3)
    torch.optim.lr_scheduler.StepLR(resumed, step_size=1, gamma=0.1)
    load_optimizer_state(resumed, twin, recorded)
    assert resumed.param_groups[0]["lr"] == adam.param_groups[0]["lr"] == pytest.approx(1e-4)


def test_a_bare_state_dict_cannot_be_checked(recorded):
    model = Net()
    with pytest.raises(OptimizerMismatchError, match="bare optimizer.state_dict"):
        load_optimizer_state(torch.optim.Adam(model.parameters()), model, recorded["state_dict"])


def test_the_picker_runs_presets_ticks_and_clicks():
    calls = []

    def fine_tune(load, frozen):
        calls.append((load, frozen))
        return 0.5 + 0.1 * len(load)

    picker = LayerPicker(["conv1", "conv2"], fine_tune, presets=[([], []), (["conv1"], ["conv1"])],
                         load=["conv1", "conv2"], freeze=["conv2"])
    assert calls == [([], []), (["conv1"], ["conv1"])], "presets run when the picker is built"
    picker.button.click()
    assert calls[-1] == (["conv1", "conv2"], ["conv2"]) and picker.results[-1]["accuracy"] == 0.7
    picker.load_boxes["conv2"].value = False
    assert picker.run() == 0.6
    assert [r["label"] for r in picker.results] == ["from scratch", "load conv1\nfreeze conv1",
                                                    "load conv1+conv2\nfreeze conv2", "load conv1\nfreeze conv2"]
    assert len(picker.chart().axes[0].patches) == 4
    with pytest.raises(ValueError, match="unknown layer"):
        picker.run(["fc9"], [])
    assert len(picker.results) == 4 and not picker.button.disabled


def _overlapping_labels(fig) -> list[tuple[str, str]]:
    """Neighbouring bar labels of a chart whose drawn boxes overlap."""
    ax = fig.axes[0]
    renderer = fig.canvas.get_renderer()
    labels = ax.get_xticklabels()
    boxes = [label.get_window_extent(renderer) for label in labels]
    return [(labels[i].get_text(), labels[i + 1].get_text()) for i in range(len(boxes) - 1)
            if boxes[i].x1 > boxes[i + 1].x0]


@pytest.mark.parametrize("bars", [4, 7])
def test_the_pickers_bar_labels_never_overlap(bars):
    """The longest labels the 05 picker can make, four bars or more: each label stays within its own slot."""
    import matplotlib.pyplot as plt

    layers = ["conv1", "conv2", "fc1", "fc2"]
    picker = LayerPicker(layers, lambda load, frozen: 0.9, presets=[(layers, layers)] * bars)
    assert picker.short_label(picker.results[0]["label"]) == ("load conv1+conv2\n+fc1+fc2\n"
                                                               "freeze conv1+conv2\n+fc1+fc2")
    fig = picker.chart()
    try:
        assert _overlapping_labels(fig) == []
        ax = fig.axes[0]  # the check says no when the labels are written out in full on one line each
        ax.set_xticks(range(bars), [r["label"] for r in picker.results])
        assert _overlapping_labels(fig), "the overlap check found nothing in a chart with overlapping labels"
    finally:
        plt.close(fig)


def _snapshot(model: torch.nn.Module) -> dict:
    return {k: v.clone() for k, v in model.state_dict().items()}


def _unchanged(model: torch.nn.Module, before: dict) -> bool:
    return all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_a_refused_partial_load_leaves_the_model_exactly_as_it_was():
    """strict=False copies every matching key before it reports the rest: the check must come first."""
    torch.manual_seed(0)
    source = Net().state_dict()
    model = Net()
    before = _snapshot(model)
    with pytest.raises(KeyMismatchError, match="nothing was loaded"):
        load_partial(model, select_keys(source, ["conv1", "conv2"]), allow_missing=["fc1", "fc2"])
    assert _unchanged(model, before), "the convolutions were overwritten although the load was refused"
    with pytest.raises(KeyMismatchError):
        load_partial(model, {**source, "extra.weight": torch.zeros(1)})
    assert _unchanged(model, before)


def test_a_size_mismatch_names_the_key_and_both_shapes_and_changes_nothing():
    torch.manual_seed(0)
    five = Net(num_classes=5).state_dict()
    model = Net()
    before = _snapshot(model)
    with pytest.raises(ShapeMismatchError, match=r"fc3.weight has shape \(5, 84\) in the state_dict but \(10, 84\) "
                                                 r"in the model \(and 1 more: fc3.bias\); nothing was loaded"):
        load_partial(model, five)
    assert _unchanged(model, before), "conv1..fc2 were copied before torch raised on fc3"
    body = {k: v for k, v in five.items() if not k.startswith("fc3")}
    load_partial(model, body, allow_missing=["fc3"])  # the fix the message gives
    assert torch.equal(model.fc2.weight, five["fc2.weight"]) and torch.equal(model.fc3.bias, before["fc3.bias"])
