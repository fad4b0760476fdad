import torch

import labutils


def load_for_inference(path):
    model = labutils.Net()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()
