"""Checks for the exercises of notebook 10 (a small language model): solutions in notebooks/solutions/ex10_*.py.

transformers and peft are imported inside each check, so that `import labutils` stays quick.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

from ._core import _check, _expect, _Wrong  # noqa: F401

__all__ = ["ex10_1", "ex10_2", "ex10_3", "ex10_4"]


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
    """save_for_sharing(model, tokenizer, folder): a bfloat16 copy, its tokenizer, a SHA256SUMS sha256sum -c accepts."""
    import shutil
    import subprocess
    import tempfile
    from pathlib import Path

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .. import sha256sums
    from ..checkpoint import CheckpointError
    from ..lm import char_tokenizer, tiny_gpt2
    from ..share import CHECKSUMS, verify_checksums

    tokenizer = char_tokenizer()
    model = tiny_gpt2(tokenizer, n_embd=64, n_layer=2, n_head=4, seed=3).eval()
    before = {k: t.clone() for k, t in model.state_dict().items()}

    def accepted(folder: Path) -> str | None:
        """None when `sha256sum -c` (or, without it, the same rules in Python) accepts folder's SHA256SUMS."""
        if shutil.which("sha256sum"):
            done = subprocess.run(["sha256sum", "--strict", "-c", CHECKSUMS], cwd=folder, capture_output=True,
                                  text=True, timeout=60)
            said = (done.stderr.strip() or done.stdout.strip()).splitlines()
            return None if done.returncode == 0 else (said[-1] if said else f"exit status {done.returncode}")
        try:
            verify_checksums(folder, required=())
        except (CheckpointError, ValueError) as err:
            return str(err).splitlines()[0]
        return None

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "shared"
        save_for_sharing(model, tokenizer, folder)
        _expect(folder.is_dir() and any(folder.iterdir()), "nothing was written in `folder`: save the model and the "
                "tokenizer there with save_pretrained.")
        after = model.state_dict()
        _expect(all(t.dtype == torch.float32 for t in after.values()) and after.keys() == before.keys() and all(
            torch.equal(after[k], t) for k, t in before.items()), "the model you were given changed (its dtype or "
            "its weights): model.to(...) and model.half() change the model itself, and the caller still uses it.")
        _expect((folder / "config.json").is_file(), "no config.json: save the model with save_pretrained, which "
                "writes it; without it from_pretrained cannot know what to build.")
        missing = [name for name in ("tokenizer.json", "tokenizer_config.json") if not (folder / name).is_file()]
        _expect(not missing, f"no {', '.join(missing)}: save the tokenizer too; without its files AutoTokenizer "
                "builds an empty one, silently.")
        loaded = AutoModelForCausalLM.from_pretrained(folder)
        _expect(loaded.dtype != torch.float16, "from_pretrained(folder) gives float16 weights: float16 is not "
                "bfloat16 (it has fewer exponent bits, so large and tiny values overflow or vanish).")
        _expect(loaded.dtype == torch.bfloat16, f"from_pretrained(folder) gives {str(loaded.dtype).split('.')[-1]} "
                "weights: the copy must be bfloat16, half the bytes of float32.")
        for key, tensor in before.items():
            _expect(torch.equal(loaded.state_dict()[key], tensor.to(torch.bfloat16)), f"{key} is not the given "
                    "model's weight rounded to bfloat16: save the model you were given.")
        _expect(AutoTokenizer.from_pretrained(folder).get_vocab() == tokenizer.get_vocab(), "the tokenizer loaded "
                "from the folder has another vocabulary: save the tokenizer you were given.")
        _expect((folder / CHECKSUMS).is_file(), f"no {CHECKSUMS}: write it last, over every file of the folder.")
        try:
            listed = {name for _digest, name in sha256sums.parse((folder / CHECKSUMS).read_text())}
        except ValueError:
            listed = set()
        unlisted = sorted(p.name for p in folder.iterdir() if p.is_file() and p.name != CHECKSUMS
                          and not p.name.startswith(".") and p.name not in listed)
        size = sum(p.stat().st_size for p in folder.glob("*.safetensors"))
        moved = Path(tmp) / "copied elsewhere"
        shutil.move(folder, moved)  # as on another machine: the original place is gone
        refused = accepted(moved)
        _expect(refused is None, f"`sha256sum -c {CHECKSUMS}`, run in a copy of the folder, refuses it: {refused}. "
                "Each line is the digest, two spaces, and the file's name relative to the folder.")
        _expect(not unlisted, f"{CHECKSUMS} does not list {', '.join(unlisted)}: write it after every other file.")
        weights = sorted(p.name for p in moved.glob("*.safetensors"))
        with open(moved / weights[-1], "r+b") as f:
            f.seek(-1, 2)
            last = f.read(1)
            f.seek(-1, 2)
            f.write(bytes([last[0] ^ 1]))
        _expect(accepted(moved) is not None, f"one byte of {weights[-1]} changed and `sha256sum -c {CHECKSUMS}` "
                "still accepts the folder: list every file with its own digest.")
    return (f"a bfloat16 copy ({size:,} bytes of weights) with its tokenizer, and a {CHECKSUMS} that `sha256sum -c` "
            "accepts and that catches a changed byte; your float32 model is untouched.")


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


def _adapters(root) -> Iterator[tuple[str, object, dict]]:
    """Save, one at a time, the adapters exercise 10.4 reads; yield (name, folder, expected report)."""
    import copy

    from peft import LoraConfig, get_peft_model
    from transformers import GPT2ForSequenceClassification

    from ..lm import char_tokenizer, tiny_gpt2

    tokenizer = char_tokenizer()
    lm = tiny_gpt2(tokenizer, n_embd=32, n_layer=1, n_head=2, seed=4)
    grown = copy.deepcopy(lm)
    grown.resize_token_embeddings(len(tokenizer) + 2, mean_resizing=False)  # two tokens added
    classifier_config = copy.deepcopy(lm.config)
    classifier_config.num_labels = 2
    classifier = GPT2ForSequenceClassification(classifier_config)  # a new head, score, at random

    def config(**settings):
        return LoraConfig(r=2, target_modules=["c_attn"], fan_in_fan_out=True, **settings)

    cases = {  # name: (base, LoraConfig settings, trained, save_pretrained settings, expected report)
        "a LoRA adapter never trained": (lm, {}, False, {}, dict(lora_trained=False, head=False, vocab_size=None)),
        "a trained LoRA adapter": (lm, {}, True, {}, dict(lora_trained=True, head=False, vocab_size=None)),
        "a trained classifier saved with modules_to_save=['score']": (
            classifier, dict(modules_to_save=["score"]), True, {}, dict(lora_trained=True, head=True, vocab_size=None)),
        "a trained classifier saved without modules_to_save": (
            classifier, {}, True, {}, dict(lora_trained=True, head=False, vocab_size=None)),
        "a classifier whose LoRA never trained, saved with modules_to_save=['score']": (
            classifier, dict(modules_to_save=["score"]), False, {},
            dict(lora_trained=False, head=True, vocab_size=None)),
        "a trained adapter of a model with 2 added tokens, saved with save_embedding_layers=True": (
            grown, {}, True, dict(save_embedding_layers=True),
            dict(lora_trained=True, head=False, vocab_size=len(tokenizer) + 2)),
    }
    torch.manual_seed(4)
    for i, (name, (base, settings, trained, saving, expected)) in enumerate(cases.items()):
        model = get_peft_model(copy.deepcopy(base), config(**settings))
        if trained:  # as training leaves them: B moved away from its zeros
            for parameter_name, parameter in model.named_parameters():
                if "lora_B" in parameter_name:
                    torch.nn.init.normal_(parameter.data, std=0.01)
        folder = root / f"adapter-{i}"
        model.save_pretrained(folder, **saving)
        yield name, folder, expected


@_check
def ex10_4(adapter_report: Callable) -> str:
    """adapter_report(folder) -> {"lora_trained": bool, "head": bool, "vocab_size": int | None}."""
    import tempfile
    from pathlib import Path

    keys = ("lora_trained", "head", "vocab_size")
    with tempfile.TemporaryDirectory() as tmp:
        for name, folder, expected in _adapters(Path(tmp)):
            got = adapter_report(folder)
            _expect(got is not None, "adapter_report returned None: return a dict with the keys lora_trained, head "
                    "and vocab_size.")
            _expect(isinstance(got, dict) and sorted(got) == sorted(keys), "return a dict with exactly the keys "
                    f"'lora_trained', 'head' and 'vocab_size', not {sorted(got) if isinstance(got, dict) else got!r}.")
            got = {k: v.item() if isinstance(v, torch.Tensor) else v for k, v in got.items()}
            if got["lora_trained"] != expected["lora_trained"]:
                _expect(expected["lora_trained"], f"{name}: you said its LoRA weights are trained. Its file holds "
                        "lora_A and lora_B tensors, yet it changes nothing: look at the values of lora_B, not only "
                        "at the names (section 3's adapter that learnt nothing).")
                raise _Wrong(f"{name}: some lora_B tensor in its file is not zero, so it changes the model; you "
                             "said its LoRA weights are not trained.")
            if got["head"] != expected["head"]:
                _expect(expected["head"], f"{name}: the file holds no score tensor; you said it holds the head. "
                        "Report what the file holds, not what the model had.")
                raise _Wrong(f"{name}: the file holds the score head, saved whole beside the LoRA weights; you said "
                             "it does not. Look for it among the file's keys.")
            if got["vocab_size"] != expected["vocab_size"]:
                _expect(expected["vocab_size"] is not None, f"{name}: the file holds no token embedding "
                        f"(transformer.wte); vocab_size must be None, not {got['vocab_size']!r}.")
                raise _Wrong(f"{name}: vocab_size is the number of rows of the saved transformer.wte weight (its "
                             f"first dimension), not {got['vocab_size']!r}.")
    return ("six adapters read right from their files alone: which LoRA weights were trained, which file carries "
            "its head, and which its grown embedding.")
