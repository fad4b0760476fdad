import torch


def load_any_prefix(model, state_dict):
    inner = model  # the wrapper's own keys carry its prefix: load into the model inside it
    while isinstance(inner, torch.nn.DataParallel) or hasattr(inner, "_orig_mod"):
        inner = inner.module if isinstance(inner, torch.nn.DataParallel) else inner._orig_mod
    cleaned = {}
    for key, value in state_dict.items():
        for prefix in ("module.", "_orig_mod."):  # DataParallel, then torch.compile
            key = key.removeprefix(prefix)
        cleaned[key] = value
    inner.load_state_dict(cleaned)
    return model
