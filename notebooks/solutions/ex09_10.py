import torch


def judge_drift(model, state_dict):
    expected = model.state_dict()                  # what a strict load wants: parameters and persistent buffers
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    buffers = dict(model.named_buffers())           # persistent=False ones too, which state_dict() leaves out
    harmless = [k for k in unexpected if k in buffers and torch.equal(state_dict[k], buffers[k])]
    return harmless, [k for k in missing + unexpected if k not in harmless]
