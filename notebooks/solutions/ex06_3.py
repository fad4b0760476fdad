import re

from labutils.checkpoint import CheckpointError, verify_checksum


def newest_good(folder):
    steps = {}
    for path in folder.glob("step-*.pt"):
        match = re.fullmatch(r"step-(\d+)\.pt", path.name)
        if match:
            steps[int(match.group(1))] = path
    for step in sorted(steps, reverse=True):
        try:
            verify_checksum(steps[step])
            return steps[step]
        except CheckpointError:
            continue
    return None
