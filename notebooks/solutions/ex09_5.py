def load_backbone(model, state_dict):
    own = model.state_dict()
    fits = {k: v for k, v in state_dict.items() if k in own and own[k].shape == v.shape}
    skipped = sorted(set(state_dict) - set(fits))
    result = model.load_state_dict(fits, strict=False)
    assert not result.unexpected_keys
    return skipped
