"""Load a saved language model (and, if given, a LoRA adapter) the way another program would, and answer prompts.

    python scripts/lm_answer.py MODEL_FOLDER [--adapter ADAPTER_FOLDER] PROMPT [PROMPT ...]

Prints one JSON object, {"answers": [...]}. Uses transformers and peft only (no
labutils, no network): what notebook 10 saved must be enough.
"""
from __future__ import annotations

import argparse
import json
import os

os.environ["HF_HUB_OFFLINE"] = "1"  # before transformers is imported: it reads the setting once

import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--adapter")
    parser.add_argument("prompts", nargs="+")
    args = parser.parse_args(argv)
    for folder, needs in ((args.model, "config.json"), (args.adapter, "adapter_config.json")):
        if folder and not os.path.isfile(os.path.join(folder, needs)):
            parser.error(f"{folder}: no {needs} there; pass a folder written by save_pretrained")
    transformers.logging.disable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model)
    if args.adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, args.adapter)
    model.eval()
    batch = tokenizer(args.prompts, return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=3, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    answers = tokenizer.batch_decode(out[:, batch.input_ids.shape[1]:], skip_special_tokens=True)
    print(json.dumps({"answers": answers}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
