"""Train a Net resumably, saving checkpoints as it goes; notebook 06 stops it with SIGTERM and with SIGKILL.

    python scripts/train_resumable.py FOLDER [--seed 0] [--epochs 2] [--subset 6000] [--batch-size 64]
                                             [--every 20] [--keep-last 3] [--workers 0] [--pause-at STEP] [--resume]

--pause-at STEP stops after that step, prints "paused at step STEP" and waits (for a signal, or for stdin to close);
--resume continues from the newest good checkpoint in FOLDER, or starts afresh when there is none.

Exit status: 0 when training finished; 1 when the checkpoint to resume from cannot be used (the message names
it); 143 (128 + 15) after SIGTERM and 130 (128 + 2) after SIGINT, once the current step is finished and a
checkpoint of it is saved, so that rerunning with --resume loses no step. SIGKILL cannot be caught: a rerun then
continues from the last checkpoint saved before it.
"""
from __future__ import annotations

import argparse
import select
import signal
import sys

from labutils import TrainConfig, mnist_tensors
from labutils.checkpoint import CheckpointError
from labutils.resume import STOPPED_EXIT, CheckpointManager, ResumableRun, resume


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--subset", type=int, default=6000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--every", type=int, default=20)
    parser.add_argument("--keep-last", type=int, default=3)
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    parser.add_argument("--pause-at", type=int)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)

    config = TrainConfig(seed=args.seed, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                         train_subset=args.subset)
    data = mnist_tensors(train=True, subset=config.train_subset)
    test = mnist_tensors(train=False)
    manager = CheckpointManager(args.folder, every=args.every, keep_last=args.keep_last)
    latest = manager.latest() if args.resume else None
    try:
        if latest is not None:
            run = resume(latest, *data, test=test, num_workers=args.workers)
        else:
            run = ResumableRun(*data, config, test=test, num_workers=args.workers)
    except CheckpointError as err:  # it names the file and the fix
        print(f"train_resumable.py: error: {err}", file=sys.stderr)
        return 1
    print(f"starting at step {run.step} of {run.total_steps}", flush=True)

    def report(run: ResumableRun) -> None:
        if run.step == args.pause_at:
            print(f"paused at step {run.step}", flush=True)
            while not run.stop_requested:  # a signal ends the wait (the handler runs between the polls)
                ready, _, _ = select.select([sys.stdin], [], [], 0.05)
                if ready and not sys.stdin.read(1):
                    break  # stdin closed: carry on training

    run.train(manager=manager, on_step=report)
    if run.stopped_by is not None:
        print(f"stopped by {run.stopped_by} after step {run.step}; saved {manager.path(run.step).name}", flush=True)
        return STOPPED_EXIT[signal.Signals[run.stopped_by]]
    print(f"finished at step {run.step}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
