import torch
from torch.nn.modules.utils import consume_prefix_in_state_dict_if_present

import labutils


def load_for_inference(path):
    weights = torch.load(path, map_location="cpu", weights_only=True)  # saved on a GPU: its tensors come to the CPU
    for prefix in ("_orig_mod.", "module."):  # what torch.compile's and DataParallel's wrappers add to each key
        consume_prefix_in_state_dict_if_present(weights, prefix)
    model = labutils.Net()
    model.load_state_dict(weights)  # strict: every key must match, so a prefix left over is an error
    return model.eval()
