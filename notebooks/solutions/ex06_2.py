import numpy as np
import torch


def capture_numpy_global():
    name, keys, position, has_gauss, cached = np.random.get_state()
    # the keys are a NumPy array, which weights_only=True refuses: a tensor of int64 holds every uint32 exactly
    return {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "position": int(position),
            "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}


def restore_numpy_global(state):
    keys = state["keys"].numpy().astype(np.uint32)
    np.random.set_state((state["name"], keys, state["position"], state["has_gauss"], state["cached_gaussian"]))
