def load_any_prefix(model, state_dict):
    cleaned = {}
    for key, value in state_dict.items():
        for prefix in ("module.", "_orig_mod."):  # DataParallel, then torch.compile
            key = key.removeprefix(prefix)
        cleaned[key] = value
    model.load_state_dict(cleaned)
    return model
