"""Checks for the exercises of notebook 10 (a small language model): solutions in notebooks/solutions/ex10_*.py.

transformers and peft are imported inside each check, so that `import labutils` stays quick.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from ._core import _check, _expect, _Wrong  # noqa: F401

__all__ = ["ex10_1", "ex10_2", "ex10_3"]


@_check
def ex10_1(lora_parameter_count: Callable) -> str:
    """lora_parameter_count(model, rank, target_modules) -> the parameters get_peft_model adds."""
    import copy

    from peft import LoraConfig, get_peft_model

    from ..lm import char_tokenizer, tiny_gpt2

    tokenizer = char_tokenizer()
    cases = [(dict(n_embd=64, n_layer=2, n_head=4), 4, ["c_attn", "c_fc"]),
             (dict(n_embd=32, n_layer=3, n_head=2), 8, ["c_proj"]),
             (dict(n_embd=48, n_layer=1, n_head=4), 2, ["c_attn", "c_proj", "c_fc"])]
    for sizes, rank, targets in cases:
        model = tiny_gpt2(tokenizer, seed=0, **sizes)
        peft_model = get_peft_model(copy.deepcopy(model), LoraConfig(r=rank, target_modules=targets,
                                                                     fan_in_fan_out=True))
        expected = sum(p.numel() for name, p in peft_model.named_parameters() if "lora_" in name)
        layers = {name: module.weight.shape for name, module in model.named_modules()
                  if any(name.endswith(t) for t in targets)}
        got = lora_parameter_count(model, rank, list(targets))
        where = f"a GPT-2 {sizes['n_layer']} layers {sizes['n_embd']} wide, rank {rank}, target_modules={targets}"
        _expect(got is not None, "lora_parameter_count returned None: return the number of parameters.")
        _expect(isinstance(got, int) and not isinstance(got, bool), f"return an int, not {type(got).__name__}.")
        if got == expected:
            continue
        if got == sum(s[0] * s[1] for s in layers.values()):
            raise _Wrong(f"{where}: {got:,} is the size of the targeted weights themselves. LoRA adds two thin "
                         "matrices per layer, A (rank × in) and B (out × rank), not a full in × out one.")
        first_only = {t: next(s for n, s in layers.items() if n.endswith(t)) for t in targets
                      if any(n.endswith(t) for n in layers)}
        if got == sum(rank * (s[0] + s[1]) for s in first_only.values()):
            raise _Wrong(f"{where}: {got:,} counts one layer per name; a name matches every module whose name "
                         "ends with it, in every block (model.named_modules()).")
        if got == expected // 2 or got == sum(rank * s[0] for s in layers.values()) or got == sum(
                rank * s[1] for s in layers.values()):
            raise _Wrong(f"{where}: {got:,} counts one matrix per layer; LoRA trains two, A (rank × in) and "
                         "B (out × rank).")
        raise _Wrong(f"{where}: get_peft_model adds {expected:,} parameters, you said {got:,}.")
    return "the count matches peft's for three models, ranks and sets of target modules."


@_check
def ex10_2(save_for_sharing: Callable) -> str:
    """save_for_sharing(model, tokenizer, folder): from_pretrained loads both; shards of 100 KB; a SHA256SUMS."""
    import json
    import shutil
    import tempfile
    from pathlib import Path

    from safetensors import safe_open
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .. import sha256sums
    from ..checkpoint import ChecksumMismatchError, ChecksumMissingError
    from ..lm import answer, char_tokenizer, problems, tiny_gpt2
    from ..share import CHECKSUMS, verify_checksums

    tokenizer = char_tokenizer()
    model = tiny_gpt2(tokenizer, n_embd=64, n_layer=2, n_head=4, seed=3).eval()
    prompts, _ = problems("+", [(a, (7 * a + 3) % 100) for a in range(0, 100, 7)])
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "shared"
        save_for_sharing(model, tokenizer, folder)
        _expect(folder.is_dir() and any(folder.iterdir()), "nothing was written in `folder`: save the model and the "
                "tokenizer there with save_pretrained.")
        _expect((folder / "config.json").is_file(), "no config.json: save the model with model.save_pretrained"
                "(folder, ...), which writes it; without it from_pretrained cannot know what to build.")
        missing = [name for name in ("tokenizer.json", "tokenizer_config.json") if not (folder / name).is_file()]
        _expect(not missing, f"no {', '.join(missing)}: save the tokenizer too, tokenizer.save_pretrained(folder); "
                "without its files AutoTokenizer builds an empty one, silently.")
        index_path = folder / "model.safetensors.index.json"
        _expect(index_path.is_file(), "the weights are in one file: pass max_shard_size=\"100KB\" to "
                "save_pretrained, which then writes shards and model.safetensors.index.json.")
        shards = sorted(set(json.loads(index_path.read_text())["weight_map"].values()))
        for shard in shards:
            with safe_open(folder / shard, framework="pt") as f:
                keys = list(f.keys())
                data = sum(f.get_tensor(k).nbytes for k in keys)
            _expect(data <= 100_000 or len(keys) == 1, f"{shard} holds {data:,} bytes of weights: the limit is "
                    "100 KB, max_shard_size=\"100KB\" (100,000 bytes).")
        _expect((folder / CHECKSUMS).is_file(), f"no {CHECKSUMS}: write it last, over every file "
                "(labutils.share.write_checksums(folder), or sha256sum * > SHA256SUMS).")
        listed = {name for _digest, name in sha256sums.parse((folder / CHECKSUMS).read_text())}
        unlisted = sorted(p.name for p in folder.iterdir() if p.is_file() and p.name != CHECKSUMS
                          and not p.name.startswith(".") and p.name not in listed)
        _expect(not unlisted, f"{CHECKSUMS} does not list {', '.join(unlisted)}: write it after every other file.")
        verify_checksums(folder, required=("config.json", "tokenizer.json", *shards))
        loaded_tokenizer = AutoTokenizer.from_pretrained(folder)
        loaded = AutoModelForCausalLM.from_pretrained(folder)
        _expect(loaded_tokenizer.get_vocab() == tokenizer.get_vocab(), "the tokenizer loaded from the folder has "
                "another vocabulary: save the tokenizer you were given.")
        for key, tensor in model.state_dict().items():
            _expect(torch.equal(loaded.state_dict()[key], tensor), f"{key} came back different: save the model "
                    "you were given, in float32.")
        _expect(answer(loaded, loaded_tokenizer, prompts) == answer(model, tokenizer, prompts),
                "the loaded model answers differently.")
        damaged = Path(tmp) / "damaged"
        shutil.copytree(folder, damaged)
        with open(damaged / shards[-1], "r+b") as f:
            f.seek(-1, 2)
            last = f.read(1)
            f.seek(-1, 2)
            f.write(bytes([last[0] ^ 1]))
        try:
            verify_checksums(damaged, required=("config.json",))
        except (ChecksumMismatchError, ChecksumMissingError):
            pass
        else:
            raise _Wrong(f"one byte of {shards[-1]} changed and {CHECKSUMS} did not notice: list every shard.")
    return f"{len(shards)} shards of at most 100 KB, the tokenizer, and a {CHECKSUMS} that catches a changed byte."


TRAINER_FILES = ("config.json", "model.safetensors", "training_args.bin", "optimizer.pt", "scheduler.pt",
                 "rng_state.pth", "trainer_state.json")  # in the order the Trainer writes them


def _checkpoint(output_dir, step: int, files: tuple[str, ...] = TRAINER_FILES) -> None:
    folder = output_dir / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    for name in files:
        (folder / name).write_text("{}" if name.endswith(".json") else "placeholder")


@_check
def ex10_3(newest_complete_checkpoint: Callable) -> str:
    """newest_complete_checkpoint(output_dir) -> the checkpoint-N folder with the largest N whose save finished."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        output_dir = Path(tmp) / "run"
        for step in (20, 40, 100):
            _checkpoint(output_dir, step)
        _checkpoint(output_dir, 120, TRAINER_FILES[:5])  # killed while saving: no rng_state.pth, no trainer_state.json
        (output_dir / "checkpoint-200").write_text("a file, not a checkpoint folder")
        (output_dir / "runs").mkdir()
        got = newest_complete_checkpoint(output_dir)
        scene = "checkpoint-20, -40 and -100 complete, checkpoint-120 half written"
        _expect(got is not None, f"returned None for a folder with {scene}: return the path of checkpoint-100.")
        got = Path(got)
        _expect(got.name != "checkpoint-40", f"checkpoint-40 for {scene}: you sorted the names as text, where "
                "'checkpoint-100' < 'checkpoint-40'; sort by the number after the dash.")
        _expect(got.name != "checkpoint-120", "checkpoint-120 has no trainer_state.json, the file the Trainer "
                "writes last: its save did not finish, and resuming from it fails. Skip it.")
        _expect(got.name != "checkpoint-200", "checkpoint-200 is a file, not a folder.")
        _expect(got == output_dir / "checkpoint-100", f"{got.name} for {scene}: the answer is checkpoint-100.")
        _checkpoint(output_dir, 140, TRAINER_FILES[:1] + TRAINER_FILES[2:])  # everything but the weights
        got = newest_complete_checkpoint(output_dir)
        _expect(got is not None and Path(got).name == "checkpoint-100", "checkpoint-140 has no model.safetensors: "
                "check the weights are there too, not only trainer_state.json.")
        only_half = Path(tmp) / "only-half"
        _checkpoint(only_half, 60, TRAINER_FILES[:5])
        _expect(newest_complete_checkpoint(only_half) is None, "a folder whose only checkpoint is half written has "
                "nothing to resume from: return None.")
        empty = Path(tmp) / "empty"
        empty.mkdir()
        _expect(newest_complete_checkpoint(empty) is None, "an empty output_dir: return None.")
    return "checkpoint-100 chosen over -40 (numbers, not text), over -120 (half written) and -140 (no weights)."
