"""Every exercise check passes on its solution and fails on the exercise cell as it ships."""
from __future__ import annotations

import pickle
import random
import re

import numpy as np
import pytest
import torch

import labutils.checks
from labutils import i18n
from labutils.paths import REPO_ROOT
from notebook_files import NOTEBOOKS, read, tagged

CHECKS = sorted(name for name in dir(labutils.checks) if re.fullmatch(r"ex\d\d_\d+", name))
SOLUTIONS = REPO_ROOT / "notebooks" / "solutions"


def _exercise(check: str) -> tuple[str, str, str]:
    """Return the notebook's setup code, the exercise cell, and the check cell that follows it."""
    notebook = next(p for p in NOTEBOOKS if p.name.startswith(check[2:4]))
    nb = read(notebook)
    setup = tagged(nb, "setup")
    cells = [i for i, c in enumerate(nb.cells) if check in c.metadata.get("tags", [])]
    assert len(setup) == 1 and len(cells) == 1, f"{notebook.name}: one setup cell and one cell tagged {check}"
    after = nb.cells[cells[0] + 1].source.strip().removesuffix(";")
    assert after.startswith(f"labutils.checks.{check}("), f"{notebook.name}: the cell after {check} must run its check"
    return setup[0].source, nb.cells[cells[0]].source, after


def _session() -> dict:
    """The global state a check must leave as it found it."""
    return {"python": random.getstate(), "numpy": pickle.dumps(np.random.get_state()),
            "torch": torch.get_rng_state(), "deterministic": torch.are_deterministic_algorithms_enabled(),
            "warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
            "cudnn": (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic)}


def _same_session(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k], b[k]) if isinstance(a[k], torch.Tensor) else a[k] == b[k] for k in a)


def _run(check: str, answer_code: str, capsys) -> tuple[bool, str]:
    """Run the notebook's setup, the answer and the check cell; the check must leave the session's state alone."""
    setup, _, check_cell = _exercise(check)
    namespace: dict = {}
    exec(setup, namespace)
    exec(answer_code, namespace)
    # a state unlike any seed a check uses: drawn, and with determinism the other way round from the lab's default
    random.seed(1234)
    np.random.seed(1234)
    torch.manual_seed(1234)
    torch.rand(7)
    flipped = not torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(flipped)
    try:
        before = _session()
        result = eval(check_cell, namespace)
        assert _same_session(_session(), before), f"{check} changed the session's random state or determinism settings"
    finally:
        torch.use_deterministic_algorithms(not flipped)
    out = capsys.readouterr().out
    assert not untranslated(out), (f"{check}: labutils/locale/zh-CN.po has no Chinese for {untranslated(out)}: run "
                                   "`make translations` and translate the new entry")
    return result, out


def untranslated(out: str) -> list[str]:
    """The messages of the checks in `out` that the Chinese edition would print in English: every message the
    exercise tests see goes through here, so each must have its translation (the checks speak Chinese after
    labutils.set_language("zh-CN"), which the Chinese notebooks call)."""
    missing = []
    for mark, message in re.findall(r"^([✓✗⚠]) ex\d\d_\d+: (.*?)(?=^[✓✗⚠] ex\d\d_\d+: |\Z)", out, re.M | re.S):
        message = message.splitlines()[0] if mark == "⚠" else message.strip()
        i18n.set_language("zh-CN")
        try:
            chinese = i18n.translate(message)
        finally:
            i18n.set_language("en")
        if chinese == message or not i18n.CHINESE.search(chinese):
            missing.append(message)
    return missing


def test_every_check_has_an_exercise_and_a_solution():
    assert len(CHECKS) >= 2 * len(NOTEBOOKS), "at least two exercises per notebook"
    solutions = sorted(p.stem for p in SOLUTIONS.glob("ex*.py"))
    assert solutions == CHECKS
    exercise_cells = sorted(tag for nb in NOTEBOOKS for c in tagged(read(nb), "exercise")
                            for tag in c.metadata["tags"] if tag != "exercise")
    assert exercise_cells == CHECKS


@pytest.mark.parametrize("check", CHECKS)
def test_check_passes_on_the_solution(check, capsys):
    ok, out = _run(check, (SOLUTIONS / f"{check}.py").read_text(), capsys)
    assert ok is True and out.startswith("✓"), out


# What a check says to an untouched skeleton: that it returned None, or, where the exercise returns nothing
# (as torch.save does), what is missing.
SKELETON_HINT = {"ex03_2": "nothing was written at `path`", "ex09_2": "nothing was written at out_path",
                 "ex09_6": "nothing was written at out_path", "ex10_2": "nothing was written in `folder`",
                 "ex12_2": "nothing was written at `path`", "ex12_5": "export wrote nothing"}


@pytest.mark.parametrize("check", CHECKS)
def test_check_fails_on_the_skeleton_without_raising(check, capsys):
    _, skeleton, _ = _exercise(check)
    ok, out = _run(check, skeleton, capsys)
    assert ok is False and out.startswith("✗") and SKELETON_HINT.get(check, "returned None") in out, out


def test_a_copy_converted_at_the_top_only_still_needs_the_namespace(capsys):
    """ex09_6: vars() on the outer Namespace leaves the nested one: the copy still needs an allow-list."""
    top_only = ("import argparse, torch\ndef make_plain(path, out_path):\n"
                "    with torch.serialization.safe_globals([argparse.Namespace]):\n"
                "        checkpoint = torch.load(path, weights_only=True)\n"
                "    checkpoint['args'] = vars(checkpoint['args'])\n    torch.save(checkpoint, out_path)")
    ok, out = _run("ex09_6", top_only, capsys)
    assert ok is False and "still needs argparse.Namespace" in out and "checkpoint['args']['optim']" in out, out


def test_an_atomic_save_must_also_sync_the_folder(capsys):
    """ex03_2: the file synced and renamed in place, the folder not: a power cut can still lose the rename."""
    solution = (SOLUTIONS / "ex03_2.py").read_text()
    without = solution[:solution.index("    folder = os.open(")]
    ok, out = _run("ex03_2", without, capsys)
    assert ok is False and "fsync the folder too" in out, out
    ok, out = _run("ex03_2", solution, capsys)
    assert ok is True, out


# Plausible wrong answers: each check must say no, with the hint that fits the mistake.
WRONG = {
    "ex00_1": ("def count_digit(labels, digit):\n    return int((labels <= digit).sum())", "gave"),
    "ex00_2": ("def pixel_mean_std(images):\n    x = images.float()\n    return x.mean().item(), x.std().item()",
               "scale to [0, 1]"),
    "ex01_1": ("def count_parameters(model):\n    return sum(t.numel() for t in model.state_dict().values())",
               "that counts buffers"),
    "ex01_2": ("def fc1_inputs(size, padding):\n    s = (size - 4) // 2\n    s = (s - 4) // 2\n    return 16 * s * s",
               "fc1_inputs(28, 2) gave 256"),
    "ex01_3": (("def train_keep_best(model, epochs, train_one_epoch, score):\n    best_score = float('-inf')\n"
                "    for epoch in range(1, epochs + 1):\n        train_one_epoch(model)\n"
                "        if score(model) > best_score:\n            best_score, best_epoch = score(model), epoch\n"
                "            best = {k: v.detach().to('cpu') for k, v in model.state_dict().items()}\n"
                "    model.load_state_dict(best)\n    return best_epoch, best"),
               "of a tensor already on the CPU returns that same tensor"),
    "ex02_1": (("def accuracy(logits, labels, k=1):\n"
                "    return (logits.topk(k, dim=1).indices == labels[:, None]).any(dim=1).float().mean()"),
               "return a Python float"),
    "ex02_2": ("def per_class_accuracy(counts):\n    return counts.diagonal() / counts.sum(0)", "column sums"),
    "ex02_3": (("import torch\ndef evaluate_properly(model, images, labels):\n    model.eval()\n"
                "    with torch.no_grad():\n        return (model(images).argmax(1) == labels).float().mean().item()"),
               "must be again after"),
    "ex03_1": (("def make_checkpoint(model, optimizer, scheduler, epoch, loss):\n"
                "    return {'model': model.state_dict(), 'optimizer': optimizer.state_dict(), "
                "'scheduler': scheduler and scheduler.state_dict(), "
                "'epoch': epoch, 'loss': loss}"), "the loss came back as a Tensor: store a Python float"),
    "ex03_2": (("import os, tempfile, torch\ndef save_atomically(obj, path):\n    fd, tmp = tempfile.mkstemp()\n"
                "    with os.fdopen(fd, 'wb') as f:\n        torch.save(obj, f)\n        f.flush()\n"
                "        os.fsync(f.fileno())\n    os.replace(tmp, path)\n    return path"),
               "not in the folder of `path`"),
    "ex03_3": ("def untie(state_dict):\n    return {k: v.clone() for k, v in state_dict.items()}",
               "copy only what you must"),
    "ex04_1": (("def strip_prefix(state_dict, prefix):\n"
                "    return {k.replace(prefix, ''): v for k, v in state_dict.items()}"),
               "only at the start"),
    "ex04_2": (("import torch, labutils\ndef load_for_inference(path):\n    model = labutils.Net()\n"
                "    model.load_state_dict(torch.load(path, weights_only=True))\n    return model.eval()"),
               "map_location='cpu'"),
    "ex04_3": (("import torch\ndef audit(folder):\n    found = {}\n    for path in sorted(folder.glob('*.pt')):\n"
                "        try:\n            found[path.name] = sorted(torch.serialization."
                "get_unsafe_globals_in_checkpoint(path))\n"
                "        except (ValueError, RuntimeError):\n            found[path.name] = None\n    return found"),
               "you left out scores.pth"),
    "ex05_1": (("def freeze_layers(model, layers):\n    for name, p in model.named_parameters():\n"
                "        if any(name.startswith(layer) for layer in layers):\n            p.requires_grad_(False)\n"
                "    return sum(p.numel() for p in model.parameters() if p.requires_grad)"), "also froze 'fc10'"),
    "ex05_2": (("def load_only(model, state_dict, layers):\n    model.load_state_dict(state_dict, strict=False)\n"
                "    return list(state_dict)"), "load only the named layers"),
    "ex05_3": (("def carry_adam_state(saved, model, optimizer):\n"
                "    optimizer.load_state_dict(saved['state_dict'])\n    return []"),
               "optimizer.load_state_dict takes a saved state whole"),
    "ex06_1": ("def redo_steps(crash_step, every, steps_per_epoch):\n    return crash_step % every",
               "the end of each epoch is saved too"),
    "ex06_2": (("import numpy as np\ndef capture_numpy_global():\n    return np.random.get_state()\n"
                "def restore_numpy_global(state):\n    np.random.set_state(state)"),
               "holds a NumPy array of 624 integers"),
    "ex06_3": (("from labutils.checkpoint import verify_checksum, CheckpointError\ndef newest_good(folder):\n"
                "    for p in sorted(folder.glob('step-*.pt'), key=lambda p: p.stat().st_mtime, reverse=True):\n"
                "        try:\n            verify_checksum(p)\n            return p\n"
                "        except CheckpointError:\n            pass"), "modification time"),
    "ex06_4": (("import signal, sys\ndef install_stop_handler():\n    previous = {}\n"
                "    def handler(signum, frame):\n        sys.exit(128 + signum)\n"
                "    for sig in (signal.SIGTERM, signal.SIGINT):\n        previous[sig] = signal.signal(sig, handler)\n"
                "    def uninstall():\n        for sig, old in previous.items():\n            signal.signal(sig, old)\n"
                "    return (lambda: False), uninstall"),
               "raised SystemExit in the middle of what the program was doing"),
    "ex06_5": (("def save_state(run):\n    return {'model': run.model.state_dict(), 'optimizer': "
                "run.optimizer.state_dict(),\n            'step': run.step, 'scaler': run.scaler.state_dict(), "
                "'ema': run.ema.state_dict()}\ndef load_state(run, state):\n"
                "    run.model.load_state_dict(state['model'])\n    run.optimizer.load_state_dict(state['optimizer'])\n"
                "    run.step = state['step']\n    run.scaler.load_state_dict(state['scaler'])\n"
                "    run.ema.load_state_dict(state['ema'])"), "the schedule starts over"),
    "ex07_1": (("import torch\ndef export_dynamic(model, image):\n"
                "    return torch.export.export(model, (image.expand(2, -1, -1, -1),),\n"
                "                               dynamic_shapes={'x': {0: torch.export.Dim('batch')}})"),
               "drags all of them into the file; clone it"),
    "ex07_2": (("import hashlib\ndef changed_files(folder):\n    out = []\n"
                "    for line in (folder / 'SHA256SUMS').read_text().splitlines():\n"
                "        digest, _, name = line.partition('  ')\n"
                "        if (folder / name).is_file() and \\\n"
                "                hashlib.sha256((folder / name).read_bytes()).hexdigest() != digest:\n"
                "            out.append(name)\n    return sorted(out)"), "a missing file counts as changed"),
    "ex07_3": ("def dense_kernel_for_keras(weight, chw):\n    return weight.T",
               "the rows are in PyTorch's flatten order"),
    "ex08_1": ("def adam_checkpoint_bytes(n_params, dtype):\n    return 2 * n_params * dtype.itemsize",
               "two averages per parameter"),
    "ex08_2": (("import json, safetensors.torch\nfrom huggingface_hub import save_torch_state_dict\n"
                "def save_sharded(state_dict, folder):\n    save_torch_state_dict(state_dict, folder)\n"
                "def load_sharded(folder):\n    return safetensors.torch.load_file(folder / 'model.safetensors')"),
               "at or under 1,000,000 bytes"),
    "ex08_3": (("import json, safetensors.torch\ndef fill_from_shards(model, folder):\n"
                "    index = json.loads((folder / 'model.safetensors.index.json').read_text())\n"
                "    for shard in set(index['weight_map'].values()):\n"
                "        shard_state = safetensors.torch.load_file(folder / shard)\n"
                "        model.load_state_dict(shard_state, strict=False, assign=True)\n"
                "    return model"), "strict=False hides missing keys"),
    "ex08_4": ("def map_location_for(rank, local_rank, gpus):\n    return f'cuda:{rank}' if gpus else 'cpu'",
               "local_rank (1) numbers them on their machine"),
    "ex09_1": ("import torch\ndef save_everything(model, path):\n    torch.save(dict(model.named_parameters()), path)",
               "buffers such as running_mean"),
    "ex09_2": ("import shutil\ndef make_portable(path, out_path):\n    shutil.copyfile(path, out_path)",
               "still says its tensors live on ['cpu', 'cuda:0', 'cuda:1']"),
    "ex09_3": (("import torch\ndef predict(model, raw_images, metadata):\n"
                "    x = (raw_images.float() / 255 - metadata['mean']) / metadata['std']\n"
                "    with torch.no_grad():\n        return model(x).argmax(1)"), "call model.eval() first"),
    "ex09_4": (("def load_any_prefix(model, state_dict):\n    cleaned = {}\n    for key, value in state_dict.items():\n"
                "        for prefix in ('module.', '_orig_mod.'):\n            key = key.removeprefix(prefix)\n"
                "        cleaned[key] = value\n    model.load_state_dict(cleaned)\n    return model"),
               "load into the model inside it"),
    "ex09_5": (("def load_backbone(model, state_dict):\n    model.load_state_dict(state_dict, strict=False)\n"
                "    return []"),
               "size mismatch"),
    "ex09_6": (("import argparse, torch\ndef plain(v):\n    if isinstance(v, argparse.Namespace):\n"
                "        return {k: plain(x) for k, x in vars(v).items()}\n    return v\n"
                "def make_plain(path, out_path):\n    checkpoint = torch.load(path, weights_only=False)\n"
                "    checkpoint['args'] = plain(checkpoint['args'])\n    torch.save(checkpoint, out_path)"),
               "call os.path.exists()"),
    "ex09_7": (("import torch\ndef file_problem(path):\n    try:\n        torch.load(path, weights_only=True)\n"
                "        return 'ok'\n    except Exception:\n        return 'truncated'"), "is 'empty'"),
    "ex09_8": (("def resume_all(checkpoint, make_model, make_optimizer, make_scheduler):\n"
                "    model = make_model()\n    model.load_state_dict(checkpoint['model'])\n"
                "    optimizer = make_optimizer(model)\n    optimizer.load_state_dict(checkpoint['optimizer'])\n"
                "    scheduler = make_scheduler(optimizer)\n    scheduler.load_state_dict(checkpoint['scheduler'])\n"
                "    return model, optimizer, scheduler"), "create all three objects first"),
    "ex09_9": (("import torch\ndef rescue_pickle(path, cls, out_path):\n"
                "    torch.save(torch.load(path, weights_only=False).state_dict(), out_path)"), "Can't get attribute"),
    "ex09_10": (("def judge_drift(model, state_dict):\n    result = model.load_state_dict(state_dict, strict=False)\n"
                 "    return result.unexpected_keys, result.missing_keys"), "not in the model at all"),
}


def test_every_check_has_a_wrong_answer():
    assert sorted(WRONG) == CHECKS


def _changed(check: str, old: str, new: str) -> str:
    """The solution of `check` with `old` replaced by `new`: a mistake in an answer that is otherwise right."""
    solution = (SOLUTIONS / f"{check}.py").read_text()
    assert old in solution, f"{check}.py no longer has {old!r}: update this mistake"
    return solution.replace(old, new)


WRONG |= {  # notebook 10's exercises: the solutions with one thing done wrong
    "ex10_1": (_changed("ex10_1", "rank * (rows + columns)", "rows * columns"), "not a full in × out one"),
    "ex10_2": (_changed("ex10_2", "    tokenizer.save_pretrained(folder)", "    pass"), "save the tokenizer too"),
    "ex10_3": (_changed("ex10_3", "int(match.group(1))", "match.group(1)"), "sorted the names as text"),
    "ex10_4": (_changed("ex10_4", "t.any().item()", "True"), "look at the values of lora_B"),
}

WRONG |= {  # notebook 11's exercises: the solutions with one thing done wrong
    "ex11_1": (_changed("ex11_1", "    return net.eval()", "    return net"), "training mode"),
    "ex11_2": (_changed("ex11_2", "divmod(step, steps_per_epoch)", "divmod(step, steps_per_epoch - 1)"),
               "count the epochs finished"),
}

WRONG |= {  # the capstone's steps: its solutions with one thing done wrong
    "ex12_1": (_changed("ex12_1", "    while run[\"step\"] < until_step:\n        model.train()",
                        "    model.train()\n    while run[\"step\"] < until_step:"),
               "call model.train() at the start of every step"),
    "ex12_2": (_changed("ex12_2", 'f"{digest}  {path.name}\\n"', 'f"{digest}  {path}\\n"'),
               "so that `sha256sum -c` works wherever the folder is copied"),
    "ex12_3": (_changed("ex12_3", "        path.with_name(path.name + \".sha256\").unlink(missing_ok=True)\n", ""),
               "delete them too"),
    "ex12_4": (_changed("ex12_4", "    torch.set_rng_state(checkpoint[\"rng\"])", ""), "torch.set_rng_state"),
    "ex12_5": (_changed("ex12_5", "    model.eval()", ""), "Call model.eval() before exporting"),
}


@pytest.mark.parametrize("check", CHECKS)
def test_check_says_no_to_a_plausible_mistake(check, capsys):
    code, hint = WRONG[check]
    ok, out = _run(check, code, capsys)
    assert ok is False and out.startswith("✗") and hint in out, out


# A second plausible mistake for the exercises that ask for more than one idea.
MORE_WRONG = [
    ("ex01_3", ("def train_keep_best(model, epochs, train_one_epoch, score):\n    scores = []\n"
                "    for epoch in range(1, epochs + 1):\n        train_one_epoch(model)\n"
                "        scores.append(score(model))\n    return scores.index(max(scores)) + 1, model.state_dict()"),
     "are the model's own"),
    ("ex01_3", ("import copy\ndef train_keep_best(model, epochs, train_one_epoch, score):\n"
                "    best_score = float('-inf')\n"
                "    for epoch in range(1, epochs + 1):\n        train_one_epoch(model)\n"
                "        if score(model) > best_score:\n            best_score, best_epoch = score(model), epoch\n"
                "            best = copy.deepcopy(model.state_dict())\n    return best_epoch, best"),
     "put the best ones back into it at the end"),
    ("ex01_3", ("def train_keep_best(model, epochs, train_one_epoch, score):\n    best_score = float('-inf')\n"
                "    for epoch in range(1, epochs + 1):\n        train_one_epoch(model)\n"
                "        if score(model) > best_score:\n            best_score, best_epoch = score(model), epoch\n"
                "            best = {k: v.tolist() for k, v in model.state_dict().items()}\n"
                "    return best_epoch, best"),
     "map each key to a tensor"),
    ("ex04_3", ("import torch\ndef audit(folder):\n    found = {}\n"
                "    for path in sorted(folder.iterdir()):\n        if path.suffix in ('.pt', '.pth'):\n"
                "            torch.load(path, weights_only=False)\n            found[path.name] = []\n"
                "    return found"),
     "code RAN"),
    ("ex04_3", ("import torch\ndef audit(folder):\n"
                "    return {p.name: sorted(torch.serialization.get_unsafe_globals_in_checkpoint(p))\n"
                "            for p in folder.iterdir() if p.suffix in ('.pt', '.pth')}"),
     "cannot read? Map such a file to None"),
    ("ex06_2", ("import numpy as np, torch\ndef capture_numpy_global():\n"
                "    name, keys, pos, _, _ = np.random.get_state()\n"
                "    return {'keys': torch.from_numpy(keys.astype(np.int64)), 'pos': int(pos)}\n"
                "def restore_numpy_global(state):\n"
                "    np.random.set_state(('MT19937', state['keys'].numpy().astype(np.uint32), state['pos']))"),
     "has_gauss and the cached Gaussian"),
    ("ex06_2", ("import numpy as np, torch\ndef capture_numpy_global():\n"
                "    return {'keys': torch.from_numpy(np.random.get_state()[1].astype(np.int64))}\n"
                "def restore_numpy_global(state):\n    pass"),
     "624 keys and position are not the captured ones"),
    ("ex09_2", ("import torch\ndef make_portable(path, out_path):\n"
                "    torch.save(torch.load(path, map_location='cpu', weights_only=True), path)\n"
                "    torch.save(torch.load(path, weights_only=True), out_path)"), "you changed two_gpus.pt"),
    ("ex09_2", ("import torch, labutils\ndef make_portable(path, out_path):\n"
                "    checkpoint = torch.load(path, map_location='cpu', weights_only=True)\n"
                "    model = labutils.Net()\n    model.load_state_dict(checkpoint['model'])\n"
                "    torch.save({**checkpoint, 'model': model}, out_path)"),
     "save the checkpoint you loaded, not a model"),
    ("ex09_4", ("def load_any_prefix(model, state_dict):\n"
                "    model.load_state_dict({k.removeprefix('module.'): v for k, v in state_dict.items()})\n"
                "    return model"), "loading keys that start '_orig_mod.' into a plain Net"),
    ("ex09_8", ("def resume_all(checkpoint, make_model, make_optimizer, make_scheduler):\n"
                "    model = make_model()\n    optimizer = make_optimizer(model)\n"
                "    scheduler = make_scheduler(optimizer)\n    model.load_state_dict(checkpoint['model'])\n"
                "    optimizer.load_state_dict(checkpoint['optimizer'])\n    return model, optimizer, scheduler"),
     "load the scheduler's state_dict too"),
    ("ex09_8", "def resume_all(checkpoint, make_model, make_optimizer, make_scheduler):\n    return [make_model()]",
     "return the three objects as a tuple"),
    ("ex10_1", _changed("ex10_1", "name.endswith(target)", "name.split('.')[-1] == target and name.startswith("
                                  "'transformer.h.0.')"),
     "a name matches every module whose name ends with it"),
    ("ex10_1", _changed("ex10_1", "rank * (rows + columns)", "rank * columns"), "counts one matrix per layer"),
    ("ex10_2", _changed("ex10_2", "copy.deepcopy(model).to(torch.bfloat16)", "model.to(torch.bfloat16)"),
     "the model you were given changed"),
    ("ex10_2", _changed("ex10_2", "{path.name}\\n\"", "{path}\\n\""), "run in a copy of the folder, refuses it"),
    ("ex10_3", _changed("ex10_3", " and (path / \"trainer_state.json\").is_file()", ""), "its save did not finish"),
    ("ex10_3", _changed("ex10_3", " and (\n                (path / \"model.safetensors\").is_file() or "
                                  "(path / \"model.safetensors.index.json\").is_file())", ""),
     "check the weights are there too"),
    ("ex10_4", _changed("ex10_4", "embeddings[0].shape[0]", "embeddings[0].shape[1]"), "its first dimension"),
    ("ex11_2", _changed("ex11_2", '"scheduler": checkpoint["lr_schedulers"][0]',
                        '"scheduler": checkpoint["lr_schedulers"]'), "one per scheduler"),
    ("ex12_1", _changed("ex12_1", "        optimizer.zero_grad()\n", ""),
     "weights differ from those of the lab's loop"),
    ("ex12_1", _changed("ex12_1", "        scheduler.step()", "        if run[\"step\"] % 5 == 0:\n"
                                                               "            scheduler.step()"),
     "call scheduler.step() once per step"),
    ("ex12_2", _changed("ex12_2", "    folder = os.open(", "    return\n    folder = os.open("),
     "fsync the folder too"),
    ("ex12_2", _changed("ex12_2", "        os.unlink(tmp)\n", ""), "the failed save left"),
    ("ex12_3", _changed("ex12_3", "found = [(int(m.group(1)), p)", "found = [(p.stat().st_mtime, p)"),
     "by modification time"),
    ("ex12_3", _changed("ex12_3", "        if is_good(path):", "        if path.stat().st_size:"), "is truncated"),
    ("ex12_4", _changed("ex12_4", "weights_only=True", "weights_only=False"), "load it with weights_only=True"),
    ("ex12_4", _changed("ex12_4", "    run[\"optimizer\"].load_state_dict(checkpoint[\"optimizer\"])\n", ""),
     "momentum buffers were not restored"),
]


@pytest.mark.parametrize(("check", "code", "hint"), MORE_WRONG)
def test_check_says_no_to_another_mistake(check, code, hint, capsys):
    ok, out = _run(check, code, capsys)
    assert ok is False and out.startswith("✗") and hint in out, out


def test_a_crashing_answer_is_reported_not_raised(capsys):
    def count_digit(labels, digit):
        raise ZeroDivisionError("oops")

    assert labutils.checks.ex00_1(count_digit) is False
    assert "your code raised ZeroDivisionError: oops" in capsys.readouterr().out


def test_a_fault_of_the_check_is_reported_as_the_labs_with_its_traceback(monkeypatch, capsys):
    import functools

    from labutils import data

    monkeypatch.setattr(data, "mnist_tensors", functools.partial(torch.zeros, "not a size"))
    ok = labutils.checks.ex00_1(lambda labels, digit: int((labels == digit).sum()))
    out = capsys.readouterr().out
    assert ok is False and out.startswith("⚠ ex00_1: the check itself failed, which is a fault of the lab"), out
    assert "Traceback (most recent call last)" in out and "nb00_welcome.py" in out and "your code" not in out


def test_an_error_in_the_learners_code_is_reported_as_theirs(capsys):
    def count_digit(labels, digit):
        return labels.no_such_method()

    assert labutils.checks.ex00_1(count_digit) is False
    out = capsys.readouterr().out
    assert out.startswith("✗ ex00_1: your code raised AttributeError") and "Traceback" not in out, out


def test_the_checks_are_one_module_per_notebook():
    from labutils.paths import REPO_ROOT

    folder = REPO_ROOT / "labutils" / "checks"
    modules = sorted(p.stem for p in folder.glob("nb*.py"))
    assert modules == sorted(f"nb{p.stem}" for p in NOTEBOOKS)
    for check in CHECKS:
        module = getattr(labutils.checks, check).__module__
        assert module.startswith(f"labutils.checks.nb{check[2:4]}_"), (check, module)
    assert max(len(p.read_text().splitlines()) for p in folder.glob("*.py")) < 400


def test_ex07_1_names_the_batch_of_one_and_reports_another_error_as_the_learners(capsys):
    def as_it_comes(model, image):
        return torch.export.export(model, (image,), dynamic_shapes={"x": {0: torch.export.Dim("batch")}})

    def broken(model, image):
        raise ValueError("my own mistake")

    assert labutils.checks.ex07_1(as_it_comes) is False
    assert "with a batch of 1 as the example" in capsys.readouterr().out
    assert labutils.checks.ex07_1(broken) is False
    assert "your code raised ValueError: my own mistake" in capsys.readouterr().out


def test_a_check_puts_back_the_determinism_settings_an_answer_changed(capsys):
    """_session_kept calls torch.use_deterministic_algorithms only when an answer changed the settings."""
    def settings() -> tuple[bool, bool]:
        return torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()

    before = settings()

    def count_digit(labels, digit):
        torch.use_deterministic_algorithms(not before[0], warn_only=not before[1])
        return int((labels == digit).sum())

    assert labutils.checks.ex00_1(count_digit) is True, capsys.readouterr().out
    assert settings() == before


def test_passed_gives_each_checks_latest_verdict(capsys):
    """The capstone runs a part only on steps whose check said ✓ last: a later ✗ takes it back."""
    right = lambda labels, digit: int((labels == digit).sum())  # noqa: E731
    assert labutils.checks.ex00_1(right) and labutils.checks.passed("ex00_1")
    assert not labutils.checks.passed("ex00_1", "ex99_9"), "a check that never ran has not passed"
    assert not labutils.checks.ex00_1(lambda labels, digit: 0) and not labutils.checks.passed("ex00_1")


def test_a_check_answers_in_chinese_after_set_language_and_in_english_again_after(capsys):
    try:
        labutils.set_language("zh-CN")
        assert labutils.checks.ex00_1(None) is False
        assert labutils.checks.ex02_1(lambda logits, labels: [0.5]) is False
    finally:
        labutils.set_language("en")
    assert labutils.checks.ex00_1(None) is False
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "✗ ex00_1: 还没有答案：先填写上面的练习单元格并运行它，然后再运行这个单元格。"
    assert lines[1] == "✗ ex02_1: 请返回 Python float（用 .item()），而不是 list。", "a message with a value in it"
    assert lines[2].startswith("✗ ex00_1: no answer yet: fill in the exercise cell above")


def test_a_message_without_a_translation_is_found_and_shown_in_english():
    out = ("✗ ex03_1: a hint nobody has translated yet.\n✓ ex03_2: temporary in the same folder, fsync, os.replace, "
           "fsync of the folder; a failed save left the good file byte for byte intact.\n")
    assert untranslated(out) == ["a hint nobody has translated yet."]
    try:
        labutils.set_language("zh-CN")
        assert i18n.translate("a hint nobody has translated yet.") == "a hint nobody has translated yet."
    finally:
        labutils.set_language("en")


def test_set_language_refuses_a_language_it_does_not_have():
    with pytest.raises(ValueError, match=r"set_language\('fr'\): the checks speak 'en' and 'zh-CN'"):
        labutils.set_language("fr")
    assert i18n.language() == "en"


@pytest.mark.parametrize("content", [None, b"<<<<<<< HEAD\nmsgid \"x\"\n", b"\xff\xfe not utf-8"],
                         ids=["missing", "a merge conflict", "not utf-8"])
def test_a_catalogue_that_cannot_be_read_leaves_the_checks_in_english_and_says_how_to_restore_it(
        content, tmp_path, monkeypatch, capsys):
    catalogue = tmp_path / "zh-CN.po"
    if content is not None:
        catalogue.write_bytes(content)
    monkeypatch.setattr(i18n, "CATALOGUE", catalogue)
    i18n._catalogue.cache_clear()
    try:
        labutils.set_language("zh-CN")
        assert labutils.checks.ex00_1(None) is False and labutils.checks.ex00_1(None) is False
    finally:
        labutils.set_language("en")
        i18n._catalogue.cache_clear()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"The checks answer in English: their Chinese messages, {catalogue}, cannot be read")
    assert lines[0].endswith("Restore the file with `git checkout labutils/locale/zh-CN.po`, or reinstall the lab "
                             "with `make setup`.")
    assert lines[1:] == [("✗ ex00_1: no answer yet: fill in the exercise cell above, run it, then run this cell "
                         "again.")] * 2, "said once, then English"


def test_a_translation_with_wrong_braces_prints_the_english_message(tmp_path, monkeypatch):
    catalogue = tmp_path / "zh-CN.po"
    catalogue.write_text('msgid "return a dict, not {0}."\nmsgstr "请返回一个字典，而不是 {1}。"\n\n'
                         'msgid "the checkpoint lacks {0}."\nmsgstr "检查点缺少 {0}。"\n', encoding="utf-8")
    monkeypatch.setattr(i18n, "CATALOGUE", catalogue)
    i18n._catalogue.cache_clear()
    try:
        labutils.set_language("zh-CN")
        assert i18n.translate("return a dict, not list.") == "return a dict, not list."
        assert i18n.translate("the checkpoint lacks epoch.") == "检查点缺少 epoch。"
    finally:
        labutils.set_language("en")
        i18n._catalogue.cache_clear()
