"""Link each notebook's first use of a glossary term to docs/GLOSSARY.md.

    python tools/glossary.py           # add the missing links (make glossary)
    python tools/glossary.py --check   # change nothing; exit 1 naming each first use without its link (a test runs it)

A learner may open any notebook first, so the rule is per notebook: the first time a notebook's Markdown uses a
term of TERMS, that use links to the term's entry. A use inside a heading, a fenced block, another link or a
longer piece of code does not count. Each entry of docs/GLOSSARY.md is a `###` heading; TERMS says how the
notebooks write it.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

import lab  # tools/lab.py, beside this file

REPO_ROOT = Path(__file__).resolve().parents[1]
GLOSSARY = REPO_ROOT / "docs" / "GLOSSARY.md"
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
TARGET = "../docs/GLOSSARY.md#"

# heading in docs/GLOSSARY.md -> how the notebooks write the term (a code form includes its backticks).
# An entry without a pattern is in the glossary for reading only: its words are too common to link reliably.
TERMS: dict[str, str | None] = {
    "state_dict": r"`state_dict`",
    # "parameters" in the model's sense, not a notebook's parameters cell
    "parameter": (r"(?<!those )(?<!change its )(?<!notebook's \*\*)\b[Pp]arameters\b"
                  r"(?! live)(?![ -]cell)(?! \(tagged)"),
    "buffer": r"\b[Bb]uffers?\b",
    "eval mode": r"`(?:model\.)?eval\(\)`",
    "logits": None,
    "head": None,
    "checkpoint": r"\b[Cc]heckpoints?\b",
    "resume": r"\b[Rr]esum(?:e|es|ed|ing)\b(?! downloading)",
    "one-cycle schedule": None,
    "random generator state": None,
    "DataLoader worker": None,
    "SIGTERM and SIGKILL": None,
    "mixed precision": r"\b[Mm]ixed precision\b",
    "GradScaler": r"`(?:torch\.amp\.)?GradScaler`",
    "EMA": r"\bEMA\b",
    "serialization": r"\b[Ss]eriali[sz](?:ation|es|ed|e)\b",
    "pickle": r"\b[Pp]ickles?\b",
    "local object": None,
    "opcode": r"\bopcodes?\b",
    "file format version": None,
    "weights_only": r"`weights_only(?:=True)?`",
    "allow-list": r"\ballow-lists?\b",
    "map_location": r"`map_location(?:=\"cpu\")?`",
    "atomic rename": r"\b[Aa]tomic(?:ally)?\b",
    "fsync": r"`(?:os\.)?fsync(?:\(\))?`|\bfsync\b",
    "checksum": r"\b[Cc]hecksums?\b",
    "CRC-32": r"\bCRC-32s?\b",
    "sidecar": r"\bsidecar\b",
    "model deployment": None,
    "torch.export": r"`torch\.export(?:\.export)?`",
    "ExportedProgram": None,
    "dynamic shape": r"\bdynamic (?:batch(?: size| dimension)?|shapes?|dimension)\b",
    "ONNX": r"\bONNX\b",
    "TorchScript": r"\bTorchScript\b",
    "AOTInductor": r"\bAOTInductor\b",
    "safetensors": r"\bsafetensors\b(?!\.)",
    "model sharing": None,
    "model card": None,
    "Hugging Face Hub": None,
    "Keras": None,
    "NCHW and NHWC": None,
    "GiB": r"\bGiB\b",
    "bfloat16": r"`(?:torch\.)?bfloat16`|\bbfloat16\b",
    "mantissa": None,
    "meta device": r"`meta` device|\bmeta device\b",
    "mmap": r"`mmap(?:=True)?`",
    "page cache": r"\bpage cache\b",
    "shard": r"\b[Ss]hards?\b",
    "RSS": r"\bRSS\b",
    "DCP": r"\bDCP\b",
    "process group": r"(?<!whole )\bprocess group\b",  # not the Unix process group a signal goes to
    "gloo": r"`gloo`|\bgloo\b",
    "torchrun": r"`torchrun`|\btorchrun\b",
    "DTensor": r"`DTensor`|\bDTensors?\b",
    "device mesh": r"\bdevice mesh\b",
    "Shard(0)": r"`Shard\(0\)`",
    "staging": r"\bstaging\b",
    "FSDP": r"\bFSDP2?\b",
    "DDP": None,
    "rank": None,
    "local rank": None,
    "collective": None,
    "barrier": None,
    "ZeRO": None,
    "embedding": None,
    "attention head": None,
    "warm-up": None,
    "PEFT": None,
    "tokenizer": r"\b[Tt]okenizers?\b(?![`.\w])",
    "causal language model": r"\bcausal language model\b",
    "exact match": r"\bexact match\b",
    "tied weights": r"\b(?:tied weights|tied)\b",
    "LoRA": r"\bLoRA\b",
    "adapter": r"\b[Aa]dapters?\b",
    "modules_to_save": r"`modules_to_save`",
    "Trainer": r"`Trainer`",
    "LightningModule": None,
    "callback": None,
    "accelerate": None,
    "load report": None,
}

HEADING = re.compile(r"^### +(.+?) *$", re.M)
LINK = re.compile(r"!?\[([^\]]*)\]\(([^)\s]+)\)")
CODE_SPAN = re.compile(r"`[^`\n]+`")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)
HEADING_LINE = re.compile(r"^#.*$", re.M)
COMMENT = re.compile(r"<!--.*?-->", re.S)
LAB_MAP = re.compile(r"<!-- the lab map.*?<!-- end of the lab map -->", re.S)  # tools/lab_map.py writes it


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation other than - and _ dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def glossary_headings() -> list[str]:
    return HEADING.findall(GLOSSARY.read_text(encoding="utf-8"))


def first_uses(source: str, pattern: str, term: str) -> tuple[int, int, bool] | None:
    """The first use of `pattern` in a Markdown cell's `source` that counts: (start, end, already linked)."""
    blocked: list[tuple[int, int]] = []
    linked: list[tuple[int, int]] = []
    for regex in (FENCE, HEADING_LINE, COMMENT, LAB_MAP):
        blocked += [m.span() for m in regex.finditer(source)]
    for m in LINK.finditer(source):
        (linked if m.group(2) == TARGET + anchor(term) else blocked).append(m.span())
    spans = [m.span() for m in CODE_SPAN.finditer(source)]
    for m in re.finditer(pattern, source):
        start, end = m.span()
        if any(a <= start < b for a, b in linked):
            return start, end, True
        if any(a <= start < b for a, b in blocked):
            continue
        inside = [(a, b) for a, b in spans if a <= start < b]
        if inside and inside[0] != (start, end):  # part of a longer piece of code
            continue
        return start, end, False
    return None


def missing_links(nb: nbformat.NotebookNode) -> list[tuple[int, int, int, str]]:
    """(cell, start, end, term) for each term whose first use in the notebook is not linked."""
    missing = []
    for term, pattern in TERMS.items():
        if pattern is None:
            continue
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "markdown" or "navigation" in cell.metadata.get("tags", []):
                continue
            found = first_uses(cell.source, pattern, term)
            if found:
                if not found[2]:
                    missing.append((index, found[0], found[1], term))
                break
    return missing


def add_links(nb: nbformat.NotebookNode) -> int:
    missing = missing_links(nb)
    for index, start, end, term in sorted(missing, key=lambda m: (m[0], -m[1])):
        source = nb.cells[index].source
        nb.cells[index].source = f"{source[:start]}[{source[start:end]}]({TARGET}{anchor(term)}){source[end:]}"
    return len(missing)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a first use is not linked")
    args = parser.parse_args(argv)
    headings = glossary_headings()
    if sorted(headings) != sorted(TERMS):
        print(f"docs/GLOSSARY.md and TERMS in tools/glossary.py disagree: only in the glossary: "
              f"{sorted(set(headings) - set(TERMS))}; only in TERMS: {sorted(set(TERMS) - set(headings))}. "
              "Give every ### entry a pattern (or None) in TERMS.", file=sys.stderr)
        return 1
    problems = 0
    for path in lab.notebooks(NOTEBOOK_DIR):
        nb = nbformat.read(path, as_version=4)
        if args.check:
            for index, start, end, term in missing_links(nb):
                print(f"notebooks/{path.name}, cell {index}: the first use of {term!r} "
                      f"({nb.cells[index].source[start:end]!r}) does not link to docs/GLOSSARY.md#{anchor(term)}: "
                      "run `make glossary`.", file=sys.stderr)
                problems += 1
        elif add_links(nb):
            nbformat.write(nb, path)
            print(f"linked the first uses in notebooks/{path.name}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
