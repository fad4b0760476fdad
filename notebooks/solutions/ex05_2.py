def load_only(model, state_dict, layers):
    selected = {k: v for k, v in state_dict.items() if any(k.startswith(layer + ".") for layer in layers)}
    for layer in layers:
        if not any(k.startswith(layer + ".") for k in selected):
            raise KeyError(f"no layer {layer!r} in the state_dict")
    result = model.load_state_dict(selected, strict=False)
    assert not result.unexpected_keys, result.unexpected_keys
    return list(selected)
