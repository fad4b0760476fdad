"""The Chinese edition (简体中文): gettext catalogues of the English text, and the Chinese files made from them.

    python tools/translations.py            # `make translations`: update the catalogues, then write the Chinese files
    python tools/translations.py --check    # list what is untranslated, fuzzy or out of date; change nothing

The English files stay the one source of code, outputs and structure. Each has a catalogue under
`translations/zh-CN/` (read and written with polib), whose entries hold the English text as `msgid` and the Chinese
as `msgstr`:
- a notebook: one entry per Markdown cell, its cell id as `msgctxt`. The Chinese notebook, `NN_name.zh-CN.ipynb`
  beside the English one (so that `scripts/`, `../images/` and `../artifacts/` are where its code expects them), is
  the English notebook with each Markdown cell's text replaced and one line added to the setup cell
  (`labutils.set_language("zh-CN")`, so that the lab answers in Chinese); the code is the same, and so are the
  outputs, but for what the lab itself printed (a check's verdict, a lab error, a `diagnose` table, a widget's
  label), which is written as the Chinese run prints it, from the messages' catalogue;
- README.md and docs/*.md: one entry per block (a paragraph, a list, a table, a heading), and one per comment in a
  fenced code block (the code around it is copied as it is);
- the lab's messages (`labutils/locale/zh-CN.po`): the exercise checks' and the rest of labutils' output, found by
  `labutils.i18n.extract`.

When the English of an entry changes, updating the catalogue keeps the old translation, marked `fuzzy`, with the old
English as `#| msgid`, as `msgmerge` does; new English arrives untranslated. A Chinese file uses a translation only
when it is neither missing nor fuzzy (the English text stands in until it is), and the tests fail on either, naming
the file and the cell.
"""
from __future__ import annotations

import argparse
import difflib
import html
import io
import json
import re
import sys
import time
import tokenize
from pathlib import Path

import polib

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import lab  # noqa: E402  (tools/lab.py, beside this file)
from labutils import i18n  # noqa: E402
from labutils._io import atomic_write_bytes  # noqa: E402
from labutils.i18n import Segment  # noqa: E402

LANGUAGE = "zh-CN"
CATALOGUES = ROOT / "translations" / LANGUAGE
NOTEBOOKS = ROOT / "notebooks"
DOCUMENTS = ["README.md", "docs/CHEATSHEET.md", "docs/GLOSSARY.md", "docs/INSTRUCTOR.md"]
SWITCH = f'labutils.set_language("{LANGUAGE}")  # 练习的检查结果用中文显示；改成 "en" 则用英文'
HEADER = {"Project-Id-Version": "Save & Load Lab", "Language": "zh_CN", "MIME-Version": "1.0",
          "Content-Type": "text/plain; charset=UTF-8", "Content-Transfer-Encoding": "8bit"}


def translated_name(path: Path) -> Path:
    """Where the Chinese edition of `path` goes: 03_saving.ipynb -> 03_saving.zh-CN.ipynb, README.md -> README.zh-CN.md.
    """
    return path.with_name(f"{path.stem}.{LANGUAGE}{path.suffix}")


def catalogue_of(path: Path) -> Path:
    """The catalogue holding the translations of `path`: translations/zh-CN/<its folder>/<its name>.po."""
    return CATALOGUES / path.relative_to(ROOT).with_suffix(".po")


# --- what is translated: the segments of a notebook and of a Markdown file -----------------------------------

def notebook_segments(path: Path) -> list[Segment]:
    """One segment per Markdown cell of the notebook, in order, with the cell's id as context."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return [Segment("".join(c["source"]), c["id"], f"{path.name}:{c['id']}") for c in cells
            if c["cell_type"] == "markdown"]


def _is_verbatim(block: str) -> bool:
    """A block copied as it is: a fenced code block, an HTML comment, or one without a letter (a rule, a picture)."""
    stripped = block.strip()
    return (stripped.startswith("```") or re.fullmatch(r"<!--(?:(?!-->).)*-->", stripped, re.S) is not None
            or not re.search(r"[A-Za-z]", re.sub(r"!\[\]\([^)]*\)", "", stripped)))


def markdown_blocks(text: str) -> list[tuple[str, str]]:
    """Split Markdown into (separator, block) pairs: blocks are parted by blank lines outside fenced code.

    "".join(separator + block) gives the text back exactly.
    """
    blocks: list[tuple[str, str]] = []
    separator, current, fence = "", [], None
    for line in text.splitlines(keepends=True):
        marker = re.match(r"\s*(```+|~~~+)", line)
        if fence is None and not line.strip():
            if current:
                blocks.append((separator, "".join(current)))
                separator, current = "", []
            separator += line
            continue
        current.append(line)
        if marker and fence is None:
            fence = marker.group(1)
        elif marker and line.strip().startswith(fence) and len(current) > 1:
            fence = None
    if current:
        blocks.append((separator, "".join(current)))
    elif separator:
        blocks.append((separator, ""))
    return blocks


def _split_newline(block: str) -> tuple[str, str]:
    """A block's text without its last newline, and that newline (a msgid never ends in one)."""
    return (block[:-1], "\n") if block.endswith("\n") else (block, "")


def code_comments(block: str, words_only: bool = True) -> list[tuple[int, int, str]]:
    """The comments of a fenced code block, as (line number in the block, column where the text starts, text): in
    Python found by its tokenizer (a "#" inside a string is not one), in a shell block after a " # " or at a line's
    start; with `words_only`, those with English words to translate. The code around them is never translated."""
    lines = block.split("\n")
    fence = lines[0].strip().lstrip("`~").strip().lower()
    found = []
    if fence in ("python", "py"):
        body = "\n".join(lines[1:])
        try:
            for token in tokenize.generate_tokens(io.StringIO(body).readline):
                if token.type == tokenize.COMMENT:
                    text = token.string.lstrip("#")
                    column = token.start[1] + len(token.string) - len(text.lstrip())
                    if text.strip():
                        found.append((token.start[0], column, text.strip()))
        except (tokenize.TokenError, IndentationError, SyntaxError):  # not whole Python: leave it as it is
            return []
    else:
        for number, line in enumerate(lines[1:], start=1):
            match = re.search(r"(?:^|\s)#\s*(\S.*)$", line)
            if match and not line.lstrip().startswith(("```", "~~~")):
                found.append((number, match.start(1), match.group(1).strip()))
    return [(number, column, text) for number, column, text in found
            if not words_only or re.search(r"[A-Za-z]{2,}", text)]


def _translate_comments(block: str, found: dict) -> str:
    """A fenced code block with each comment whose translation is known in Chinese, the code as it is."""
    lines = block.split("\n")
    for number, column, text in code_comments(block):
        chinese = found.get((None, text))
        if chinese:
            line = lines[number]
            lines[number] = line[:column] + chinese + line[column + len(text):]
    return "\n".join(lines)


def markdown_segments(path: Path) -> list[Segment]:
    """One segment per translatable block of a Markdown file, numbered from its line, and one per comment in its
    code blocks."""
    segments, line = [], 1
    for separator, block in markdown_blocks(path.read_text(encoding="utf-8")):
        line += separator.count("\n")
        if block and not _is_verbatim(block):
            segments.append(Segment(_split_newline(block)[0], None, f"{path.relative_to(ROOT)}:{line}"))
        elif block.strip().startswith(("```", "~~~")):
            segments += [Segment(text, None, f"{path.relative_to(ROOT)}:{line + number}")
                         for number, _, text in code_comments(block)]
        line += block.count("\n")
    return segments


def segments_of(path: Path) -> list[Segment]:
    return notebook_segments(path) if path.suffix == ".ipynb" else markdown_segments(path)


# --- the catalogues -----------------------------------------------------------------------------------------

def new_catalogue() -> polib.POFile:
    po = polib.POFile(wrapwidth=0)
    po.metadata = dict(HEADER)
    return po


def read_catalogue(path: Path) -> polib.POFile:
    return polib.pofile(str(path), wrapwidth=0) if path.exists() else new_catalogue()


def usable(entry: polib.POEntry | None) -> bool:
    """An entry whose translation a Chinese file may use: translated, and not fuzzy."""
    return entry is not None and bool(entry.msgstr) and "fuzzy" not in entry.flags


def merge(po: polib.POFile, segments: list[Segment]) -> polib.POFile:
    """The catalogue for `segments`, keeping what `po` translated: as msgmerge does, an entry whose English changed
    keeps its old translation, marked fuzzy, with the old English as its previous msgid."""
    known = {(e.msgctxt, e.msgid): e for e in po if not e.obsolete}
    by_context = {e.msgctxt: e for e in po if e.msgctxt and not e.obsolete and e.msgstr}
    translated = [e for e in po if not e.obsolete and e.msgstr]
    merged, used = new_catalogue(), set()
    for segment in segments:
        key = (segment.msgctxt, segment.msgid)
        if key in used:
            continue
        used.add(key)
        old = known.get(key)
        if old is not None:
            entry = polib.POEntry(msgid=segment.msgid, msgstr=old.msgstr, msgctxt=segment.msgctxt,
                                  flags=list(old.flags), previous_msgid=old.previous_msgid)
        else:
            entry = polib.POEntry(msgid=segment.msgid, msgstr="", msgctxt=segment.msgctxt)
            near = by_context.get(segment.msgctxt) if segment.msgctxt else None
            if near is None:
                matches = difflib.get_close_matches(segment.msgid, [e.msgid for e in translated], n=1, cutoff=0.6)
                near = next((e for e in translated if matches and e.msgid == matches[0]), None)
            if near is not None:
                entry.msgstr, entry.flags = near.msgstr, ["fuzzy"]
                entry.previous_msgid = near.previous_msgid if "fuzzy" in near.flags and near.previous_msgid \
                    else near.msgid
        entry.occurrences = [(segment.where, "")]
        entry.comment = "\n".join(f"{{{i}}} is {code}" for i, code in enumerate(segment.values))
        merged.append(entry)
    return merged


def catalogue_text(po: polib.POFile) -> str:
    return str(po).rstrip("\n") + "\n"


# --- the Chinese files ------------------------------------------------------------------------------------------

def _lookup(po: polib.POFile) -> dict[tuple[str | None, str], str]:
    return {(e.msgctxt, e.msgid): e.msgstr for e in po if usable(e) and not e.obsolete}


# The lines of a saved output that the lab itself wrote, as the Chinese notebook would write them after its setup
# cell's set_language: an exercise check's verdict, and a lab error shown by expect_error (torch's own stay English).
CHECK_LINE = re.compile(r"^([✓✗⚠] \w+: )(.+)$")
WAITING_LINE = re.compile(r"^()(\(waiting\) .+)$")  # the capstone's, for a part whose steps are not solved yet
CHECKPOINT_ERROR_LINE = re.compile(r"^(labutils\.checkpoint\.\w+Error: )(.+?): (.+)\. Fix: (.+)$")  # path, problem, fix
LAB_ERROR_LINE = re.compile(r"^(labutils\.\w+\.\w+Error: )(.+)$")
ERROR_TEMPLATE = "{0}: {1}. Fix: {2}"  # labutils/errors.py: how a CheckpointError shows its path, problem and fix
# a cell of a table labutils drew (diagnose), or a heading of its widgets
WIDGET_LABEL = re.compile(r"(description=')([^']*)(')")  # a widget's label in its text form
TABLE_CELL = re.compile(r"(<(?:t[dh]|b)(?:\s[^>]*)?>)([^<]*)(</(?:t[dh]|b)>)")


def translate_output_text(text: str, messages: tuple) -> str:
    """A saved output's text with the lab's own lines in Chinese, from the messages' catalogue (`i18n.table`)."""
    lines = []
    for line in text.split("\n"):
        error = CHECKPOINT_ERROR_LINE.match(line)
        match = CHECK_LINE.match(line) or WAITING_LINE.match(line) or LAB_ERROR_LINE.match(line)
        if error:
            line = error.group(1) + i18n.translate_parts(ERROR_TEMPLATE, *error.groups()[1:], translations=messages)
        elif match:
            line = match.group(1) + i18n.translate(match.group(2), messages)
        lines.append(line)
    return "\n".join(lines)


def translate_output_html(text: str, messages: tuple) -> str:
    """An HTML output with every table cell (or bold text) whose whole text is one of the lab's messages in Chinese."""
    def cell(match: re.Match) -> str:
        inner = html.unescape(match.group(2))
        chinese = i18n.translate(inner, messages)
        return match.group(0) if chinese == inner else match.group(1) + html.escape(chinese) + match.group(3)
    return TABLE_CELL.sub(cell, text)


def _translate_outputs(cell: dict, messages: tuple) -> None:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            output["text"] = _lines(translate_output_text("".join(output["text"]), messages))
        data = output.get("data", {})
        if "text/html" in data:
            data["text/html"] = _lines(translate_output_html("".join(data["text/html"]), messages))
        if "application/vnd.jupyter.widget-view+json" in data and "text/plain" in data:  # shown until it is drawn
            data["text/plain"] = _lines(WIDGET_LABEL.sub(
                lambda m: m.group(1) + i18n.translate(m.group(2), messages) + m.group(3),
                translate_output_html("".join(data["text/plain"]), messages)))


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def _translate_widgets(nb: dict, messages: tuple) -> None:
    """The saved state of the lab's widgets (a button's label, a column's heading) in Chinese."""
    state = nb["metadata"].get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    for model in state.values():
        fields = model.get("state", {})
        if isinstance(fields.get("description"), str):
            fields["description"] = i18n.translate(fields["description"], messages)
        if model.get("model_name") == "HTMLModel" and isinstance(fields.get("value"), str):
            fields["value"] = translate_output_html(fields["value"], messages)


def translate_notebook(path: Path, po: polib.POFile, messages: tuple | None = None) -> str:
    """The Chinese notebook's JSON: the English one with its Markdown translated, the language switch added, and
    what the lab printed in Chinese (`messages`: the checks' and the lab's messages, from `i18n.table`)."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    found = _lookup(po)
    messages = i18n.table(read_catalogue(i18n.CATALOGUE)) if messages is None else messages
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            text = "".join(cell["source"])
            chinese = found.get((cell["id"], text), text)
            cell["source"] = chinese.splitlines(keepends=True)
            continue
        if "setup" in cell.get("metadata", {}).get("tags", []):
            source = "".join(cell["source"]).rstrip("\n")
            cell["source"] = (source + "\n" + SWITCH).splitlines(keepends=True)
        _translate_outputs(cell, messages)
    _translate_widgets(nb, messages)
    nb["metadata"]["language"] = LANGUAGE  # not read by the code: it says which edition a file is
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"  # as nbformat writes it


def translate_markdown(path: Path, po: polib.POFile) -> str:
    found = _lookup(po)
    parts = []
    for separator, block in markdown_blocks(path.read_text(encoding="utf-8")):
        text, newline = _split_newline(block)
        if block and not _is_verbatim(block):
            text = found.get((None, text), text)
        elif block.strip().startswith(("```", "~~~")):
            text = _translate_comments(text, found)
        parts.append(separator + text + newline)
    return "".join(parts)


def translate(path: Path, po: polib.POFile, messages: tuple | None = None) -> str:
    return translate_notebook(path, po, messages) if path.suffix == ".ipynb" else translate_markdown(path, po)


def sources() -> list[Path]:
    """Every English file with a Chinese edition."""
    return lab.notebooks(NOTEBOOKS) + [ROOT / name for name in DOCUMENTS]


# --- what is missing or stale -------------------------------------------------------------------------------------

def _shown(path: Path) -> str:
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name


def problems(path: Path, po: polib.POFile, catalogue: str | None = None) -> list[str]:
    """What keeps the Chinese edition of `path` from being complete, one line each, naming the file and the cell
    (or line) and the fix; empty when every segment has a usable translation."""
    found = {(e.msgctxt, e.msgid): e for e in po if not e.obsolete}
    catalogue = catalogue or _shown(catalogue_of(path))
    lines = []
    for segment in segments_of(path):
        entry = found.get((segment.msgctxt, segment.msgid))
        where = f"{_shown(path)} cell {segment.msgctxt}" if segment.msgctxt else segment.where
        if entry is None:
            lines.append(f"{where}: its English is not in {catalogue} (it changed or is new): run `make translations`,"
                         " then translate the entry it marks")
        elif "fuzzy" in entry.flags:
            lines.append(f"{where}: its English changed since it was translated: update the fuzzy entry in "
                         f"{catalogue} and remove its fuzzy flag")
        elif not entry.msgstr:
            lines.append(f"{where}: not translated yet: fill in its msgstr in {catalogue}")
    return lines


def message_problems(po: polib.POFile, segments: list[Segment] | None = None) -> list[str]:
    """The same for the checks' messages, and a translation whose {0}, {1}, … differ from its English (the check
    would print a wrong value, or fail to print)."""
    found = {e.msgid: e for e in po if not e.obsolete}
    catalogue = _shown(i18n.CATALOGUE)
    lines = []
    for segment in i18n.extract() if segments is None else segments:
        entry = found.get(segment.msgid)
        if entry is None or not usable(entry):
            state = "missing" if entry is None else "fuzzy" if "fuzzy" in entry.flags else "not translated"
            lines.append(f"{segment.where}: {segment.msgid!r} is {state} in {catalogue}: run `make translations`, "
                         "then translate it")
        elif sorted(re.findall(r"\{\d+\}", entry.msgid)) != sorted(re.findall(r"\{\d+\}", entry.msgstr)) or \
                re.sub(r"\{\d+\}", "", entry.msgstr).count("{") != re.sub(r"\{\d+\}", "", entry.msgid).count("{"):
            lines.append(f"{segment.where}: the translation of {entry.msgid!r} has other placeholders or braces than "
                         f"its English: {entry.msgstr!r}")
    return lines


def update(write: bool = True) -> dict:
    """Update every catalogue from its English and write every Chinese file; return counts for the report, and
    under "stale" the files that were (or, with write=False, would be) written."""
    counts = {"files": 0, "entries": 0, "usable": 0, "fuzzy": 0, "untranslated": 0, "written": 0}
    # the messages first: the Chinese notebooks' outputs are translated with them
    po = merge(read_catalogue(i18n.CATALOGUE), i18n.extract())
    messages = i18n.table(po)
    outputs: list[tuple[Path, str]] = [(i18n.CATALOGUE, catalogue_text(po))]
    counts["entries"] += len(po)
    counts["usable"] += sum(usable(e) for e in po)
    counts["fuzzy"] += sum("fuzzy" in e.flags for e in po)
    counts["untranslated"] += sum(not e.msgstr for e in po)
    for path in sources():
        catalogue = catalogue_of(path)
        po = merge(read_catalogue(catalogue), segments_of(path))
        outputs += [(catalogue, catalogue_text(po)), (translated_name(path), translate(path, po, messages))]
        counts["files"] += 1
        counts["entries"] += len(po)
        counts["usable"] += sum(usable(e) for e in po)
        counts["fuzzy"] += sum("fuzzy" in e.flags for e in po)
        counts["untranslated"] += sum(not e.msgstr for e in po)
    for target, text in outputs:
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            counts["written"] += 1
            counts.setdefault("stale", []).append(_shown(target))
            if write:
                target.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_bytes(text.encode("utf-8"), target)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report what is missing or stale; write nothing")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    counts = update(write=not args.check)
    found = [line for path in sources() for line in problems(path, read_catalogue(catalogue_of(path)))]
    found += message_problems(read_catalogue(i18n.CATALOGUE))
    print(f"{counts['files']} files and the checks' messages: {counts['entries']} entries, {counts['usable']} "
          f"translated, {counts['fuzzy']} fuzzy, {counts['untranslated']} untranslated; "
          f"{counts['written']} file(s) {'out of date' if args.check else 'written'} "
          f"({time.perf_counter() - start:.1f} s)")
    for line in found[:20]:
        print(line)
    if len(found) > 20:
        print(f"… and {len(found) - 20} more (`python tools/translations.py --check` lists them after an update)")
    return 1 if args.check and (found or counts["written"]) else 0


if __name__ == "__main__":
    sys.exit(main())
