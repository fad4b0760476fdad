import argparse

import torch


def plain(value):
    # a Namespace becomes a dict, at every depth; anything else stays as it is
    if isinstance(value, argparse.Namespace):
        return {key: plain(item) for key, item in vars(value).items()}
    return value


def make_plain(path, out_path):
    with torch.serialization.safe_globals([argparse.Namespace]):  # this one class, for this one load of our file
        checkpoint = torch.load(path, weights_only=True)
    checkpoint["args"] = plain(checkpoint["args"])
    torch.save(checkpoint, out_path)  # needs nothing allowed any more
