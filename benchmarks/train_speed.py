"""Seconds of training to reach 98.5 % and 99.0 % test accuracy with notebook 02's defaults.

Trains the lab's Net with the default TrainConfig for several seeds, evaluates the full MNIST test set
every fifth of an epoch (the evaluation time is not counted), and prints the median over the seeds.
Usage: python benchmarks/train_speed.py [--seeds 0 1 2]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from labutils import Net, TrainConfig, evaluate, mnist_tensors, seed_everything
from labutils.train import make_loader, make_optimizer, train_one_epoch

TARGETS = (0.985, 0.990)


class TimedLoader:
    """Yield the loader's batches, pausing the clock to evaluate every `every` batches."""

    def __init__(self, loader, every, on_pause):
        self.loader, self.every, self.on_pause = loader, every, on_pause

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        for i, batch in enumerate(self.loader):
            if i and i % self.every == 0:
                self.on_pause()
            yield batch
        self.on_pause()


def run(seed: int) -> dict:
    config = TrainConfig(seed=seed)
    seed_everything(seed)
    model = Net()
    train, test = mnist_tensors(True), mnist_tensors(False)
    loader = make_loader(*train, batch_size=config.batch_size, seed=seed)
    optimizer, scheduler = make_optimizer(model, config, len(loader))
    clock = {"trained": 0.0, "since": time.perf_counter()}
    reached: dict[float, float] = {}

    def pause() -> None:
        clock["trained"] += time.perf_counter() - clock["since"]
        accuracy = evaluate(model, *test)["accuracy"]
        for target in TARGETS:
            if accuracy >= target and target not in reached:
                reached[target] = clock["trained"]
        clock["accuracy"] = accuracy
        clock["since"] = time.perf_counter()

    timed = TimedLoader(loader, every=len(loader) // 5, on_pause=pause)
    for _ in range(config.epochs):
        train_one_epoch(model, timed, optimizer, scheduler)
    return {"seed": seed, "seconds": clock["trained"], "accuracy": clock["accuracy"], **reached}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, config {TrainConfig()}")
    results = []
    for seed in args.seeds:
        r = run(seed)
        results.append(r)
        cells = "  ".join(f"to {100 * t:.1f} %: {r[t]:5.1f} s" if t in r else f"to {100 * t:.1f} %:   never"
                          for t in TARGETS)
        print(f"seed {seed}: {cells}  final {100 * r['accuracy']:.2f} %  training {r['seconds']:.1f} s", flush=True)

    def median(values):
        return f"{statistics.median(values):5.1f} s" if len(values) == len(results) else "not reached by every seed"

    print("median:", "  ".join(f"to {100 * t:.1f} %: {median([r[t] for r in results if t in r])}" for t in TARGETS),
          f" final {100 * statistics.median(r['accuracy'] for r in results):.2f} %",
          f" training {statistics.median(r['seconds'] for r in results):.1f} s")


if __name__ == "__main__":
    main()
