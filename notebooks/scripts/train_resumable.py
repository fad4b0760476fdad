"""Train a Net resumably, saving checkpoints as it goes; notebook 06 runs it and kills it with SIGKILL.

    python scripts/train_resumable.py FOLDER [--seed 0] [--epochs 2] [--subset 6000] [--batch-size 64]
                                             [--every 20] [--keep-last 3] [--pause-at STEP] [--resume]

--pause-at STEP stops after that step, prints "paused at step STEP" and waits (to be killed);
--resume continues from the newest good checkpoint in FOLDER instead of starting afresh.
"""
from __future__ import annotations

import argparse
import sys

from labutils import TrainConfig, mnist_tensors
from labutils.resume import CheckpointManager, ResumableRun, resume


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
    parser.add_argument("--pause-at", type=int)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)

    config = TrainConfig(seed=args.seed, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                         train_subset=args.subset)
    data = mnist_tensors(train=True, subset=config.train_subset)
    test = mnist_tensors(train=False)
    manager = CheckpointManager(args.folder, every=args.every, keep_last=args.keep_last)
    latest = manager.latest() if args.resume else None
    run = resume(latest, *data, test=test) if latest else ResumableRun(*data, config, test=test)
    print(f"starting at step {run.step} of {run.total_steps}", flush=True)

    def report(run: ResumableRun) -> None:
        if run.step == args.pause_at:
            print(f"paused at step {run.step}", flush=True)
            sys.stdin.read()  # wait here until killed (or until stdin closes)

    run.train(manager=manager, on_step=report)
    print(f"finished at step {run.step}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
