import torch


def file_problem(path):
    if not path.exists():
        return "missing"
    if path.stat().st_size == 0:
        return "empty"
    try:
        torch.load(path, weights_only=True)
        return "ok"
    except Exception:
        with open(path, "rb") as f:
            starts_like_a_zip = f.read(4) == b"PK\x03\x04"  # torch.save writes a zip archive
        return "truncated" if starts_like_a_zip else "not a checkpoint"
