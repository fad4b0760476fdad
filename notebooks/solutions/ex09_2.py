import torch


def make_portable(path, out_path):
    held = {}

    def to_cpu(storage, location):  # torch.load calls it once per storage, with the device the file names for it
        held[location] = held.get(location, 0) + storage.nbytes()
        return storage  # the storage as it was read: on the CPU

    torch.save(torch.load(path, map_location=to_cpu, weights_only=True), out_path)  # the copy names only the CPU
    return held
