import importlib
import pickle
import re

import torch

# the pieces of a saved NumPy number (section 4): they build a number and run no code
NUMPY_NUMBER = {"numpy._core.multiarray.scalar", "numpy.dtype"}
REFUSED = re.compile(r"GLOBAL (\S+) was not|but got <class '([^']+)'>")  # the two ways a refusal names a global


def imported(name):
    module, _, attribute = name.rpartition(".")
    return getattr(importlib.import_module(module), attribute)


def needs(path):
    names = set(torch.serialization.get_unsafe_globals_in_checkpoint(path))  # reads the pickle, builds nothing
    if not names <= NUMPY_NUMBER:
        return sorted(names)  # it names something else (code, perhaps): never load it to find more
    while True:  # the listing can leave out what is built while loading (a dtype's class): allow it, try again
        try:
            with torch.serialization.safe_globals([imported(name) for name in names]):
                torch.load(path, weights_only=True)
            return sorted(names)
        except pickle.UnpicklingError as refused:
            found = REFUSED.search(str(refused))
            name = found and (found.group(1) or found.group(2))
            if not name or name in names or not (name in NUMPY_NUMBER or name.startswith("numpy.dtypes.")):
                raise
            names.add(name)


def audit(folder):
    found = {}
    for path in sorted(folder.iterdir()):
        if path.suffix not in (".pt", ".pth"):  # the same format under two names
            continue
        try:
            found[path.name] = needs(path)
        except (ValueError, RuntimeError):  # the old format, or cut short: nothing vouches for it
            found[path.name] = None
    return found
