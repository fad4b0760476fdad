"""The small language model of notebook 10: an arithmetic task written as text, a character tokenizer, a tiny GPT-2.

Imported by notebook 10 and its checks only (`import labutils` does not import it), since transformers takes
seconds to import.
"""
from __future__ import annotations

import contextlib
import logging
import random
import warnings
from collections.abc import Iterator

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

CHARS = "0123456789+-="
SPECIAL = {"<pad>": 0, "<eos>": 1}
PROMPT_LENGTH = 6  # "27+58=": two digits, the operation, two digits, "="
ANSWER_LENGTH = 3  # "085": the result on three digits, zero-padded
OPERATIONS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b}

# peft 0.21.2's get_peft_model asks transformers 5.24 for a name it has deprecated: advice for peft, not for learners.
# Set on import, for the whole kernel, not around one call: notebook 10 calls get_peft_model in its own cells and
# exercises, after its setup cell has imported this module; only notebook 10 and its checks import it.
warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)


def problems(operation: str, pairs: list[tuple[int, int]]) -> tuple[list[str], list[str]]:
    """Return the prompts ("27+58=") and the answers ("085") for `pairs`; "-" puts the larger number first."""
    if operation not in OPERATIONS:
        raise ValueError(f"operation {operation!r} is not one of {sorted(OPERATIONS)}")
    if operation == "-":
        pairs = [(max(a, b), min(a, b)) for a, b in pairs]
    return ([f"{a:02d}{operation}{b:02d}=" for a, b in pairs],
            [f"{OPERATIONS[operation](a, b):03d}" for a, b in pairs])


def split_pairs(seed: int, test_size: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Shuffle the 10,000 pairs of two-digit numbers with `seed`; return (train, held-out test of `test_size`)."""
    if not 0 < test_size < 10_000:
        raise ValueError(f"test_size={test_size} is not allowed: hold out between 1 and 9,999 of the 10,000 pairs")
    pairs = [(a, b) for a in range(100) for b in range(100)]
    random.Random(seed).shuffle(pairs)
    return pairs[test_size:], pairs[:test_size]


def char_tokenizer() -> PreTrainedTokenizerFast:
    """Build a tokenizer with one token per character of CHARS, plus <pad> and <eos>."""
    vocab = {**SPECIAL, **{c: i + len(SPECIAL) for i, c in enumerate(CHARS)}}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    core.pre_tokenizer = pre_tokenizers.Split(pattern="", behavior="isolated")  # every character is a word
    core.decoder = decoders.Fuse()  # and decoding joins them without spaces
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="<eos>", bos_token="<eos>",
                                   model_max_length=16)


def tiny_gpt2(tokenizer: PreTrainedTokenizerFast, *, n_embd: int, n_layer: int, n_head: int,
              seed: int) -> GPT2LMHeadModel:
    """Build a GPT-2 with random weights from a config sized for the task; nothing is downloaded."""
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=16, n_embd=n_embd, n_layer=n_layer, n_head=n_head,
                        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                        pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    return GPT2LMHeadModel(config)


def encode(tokenizer: PreTrainedTokenizerFast, operation: str,
           pairs: list[tuple[int, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Return input_ids (prompt, answer, <eos>) and labels, which are -100 (ignored by the loss) over the prompt."""
    prompts, answers = problems(operation, pairs)
    ids = torch.tensor([tokenizer(p + a).input_ids + [tokenizer.eos_token_id] for p, a in zip(prompts, answers)])
    labels = ids.clone()
    labels[:, :PROMPT_LENGTH] = -100  # learn to answer, not to write prompts
    return ids, labels


class ProblemDataset(torch.utils.data.Dataset):
    """The problems as the Trainer takes them: one dict of input_ids and labels per problem."""

    def __init__(self, tokenizer: PreTrainedTokenizerFast, operation: str, pairs: list[tuple[int, int]]):
        self.input_ids, self.labels = encode(tokenizer, operation, pairs)

    def __len__(self) -> int:
        return len(self.input_ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.input_ids[i], "labels": self.labels[i]}


@torch.no_grad()
def answer(model: torch.nn.Module, tokenizer: PreTrainedTokenizerFast, prompts: list[str]) -> list[str]:
    """Let the model complete each prompt with ANSWER_LENGTH characters, greedily (the likeliest each time)."""
    was_training = model.training
    model.eval()
    batch = tokenizer(prompts, return_tensors="pt")  # every prompt has PROMPT_LENGTH tokens: no padding needed
    out = model.generate(**batch, max_new_tokens=ANSWER_LENGTH, do_sample=False,
                         pad_token_id=tokenizer.pad_token_id)
    model.train(was_training)
    return tokenizer.batch_decode(out[:, batch.input_ids.shape[1]:], skip_special_tokens=True)


def exact_match(model: torch.nn.Module, tokenizer: PreTrainedTokenizerFast, operation: str,
                pairs: list[tuple[int, int]]) -> float:
    """Return the share of `pairs` whose answer the model writes exactly right."""
    prompts, expected = problems(operation, pairs)
    return sum(a == e for a, e in zip(answer(model, tokenizer, prompts), expected)) / len(pairs)


@contextlib.contextmanager
def transformers_log(level: int = logging.INFO) -> Iterator[list[tuple[str, str]]]:
    """Collect what transformers logs at `level` or above, and the Python warnings, while the block runs.

    Yields a list that fills with (level name, message) pairs; nothing is printed, whatever the verbosity.
    """
    import transformers

    logger = logging.getLogger("transformers")
    records: list[tuple[str, str]] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append((record.levelname, record.getMessage()))

    handlers, verbosity = logger.handlers[:], transformers.logging.get_verbosity()
    logger.handlers = [Collect(level)]  # in place of transformers' own handler, which prints to stderr
    transformers.logging.set_verbosity(level)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield records
        records.extend(("WARNING", str(w.message)) for w in caught)
    finally:
        logger.handlers = handlers
        transformers.logging.set_verbosity(verbosity)
