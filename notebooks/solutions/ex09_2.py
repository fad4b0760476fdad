import torch


def make_portable(path, out_path):
    state = torch.load(path, map_location="cpu", weights_only=True)  # every tensor comes to the CPU...
    torch.save(state, out_path)  # ...and the copy names only the CPU
