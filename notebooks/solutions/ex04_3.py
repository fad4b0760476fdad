import torch


def audit(folder):
    found = {}
    for path in sorted(folder.iterdir()):
        if path.suffix not in (".pt", ".pth"):  # the same format under two names
            continue
        try:
            found[path.name] = sorted(torch.serialization.get_unsafe_globals_in_checkpoint(path))
        except (ValueError, RuntimeError):  # the old format, or cut short: nothing vouches for it
            found[path.name] = None
    return found
