"""The language the lab answers in: English, or Chinese from the catalogue labutils/locale/zh-CN.po.

Two kinds of text are translated: the exercise checks' messages (found where the checks write them), and the lab's
own output elsewhere in labutils (`diagnose` tables, the problems and fixes of its errors, widget labels, plot
labels), each written as `N_("text")` where it is defined and passed through `translate` where it is shown.
"""
from __future__ import annotations

import ast
import functools
import re
from dataclasses import dataclass
from pathlib import Path

LANGUAGES = ("en", "zh-CN")
CATALOGUE = Path(__file__).resolve().parent / "locale" / "zh-CN.po"
PACKAGE = Path(__file__).resolve().parent
CHECKS = PACKAGE / "checks"
_language = "en"

# Where a check's message is written: the hint of _expect(condition, hint), the text of _Wrong(text), a check's
# `return "success message"`, and the hint `fix` of _weights_only_round_trip(obj, fix).
_HINT_ARGUMENT = {"_expect": 1, "_Wrong": 0, "_weights_only_round_trip": 1, "translate": 0, "N_": 0}
_MARKED = {"translate": 0, "N_": 0}  # outside the checks, only text marked for translation is a message
# the lab's errors (labutils/errors.py): CheckpointError(path, problem, fix) shows its problem and fix translated
_ERRORS = {"CheckpointError", "CheckpointNotFoundError", "CheckpointCorruptError", "NotACheckpointError",
           "ChecksumMismatchError", "ChecksumMissingError", "UnsafeCheckpointError", "CheckpointDeviceError",
           "CheckpointWriteError"}
# labutils/formats.py: a Format's name and description, and when to use the call that opens it
_FORMAT_TEXTS = ((1, 2, 6), ("caution",))
_PLACEHOLDER = re.compile(r"\{(\d+)\}")
CHINESE = re.compile(r"[\u4e00-\u9fff]")  # a CJK ideograph: what tells a Chinese text from an English one


@dataclass(frozen=True)
class Segment:
    """One piece of English to translate: its text, its context (a cell id, or None), where it is, and for a
    message with values, the code each {0}, {1}, … stands for."""
    msgid: str
    msgctxt: str | None
    where: str
    values: tuple[str, ...] = ()


def N_(text: str) -> str:
    """Mark `text` as a message to translate where it is shown (with `translate`); return it unchanged."""
    return text


def set_language(language: str) -> None:
    """Make the exercise checks answer in `language`: "en" (the default) or "zh-CN"."""
    global _language
    if language not in LANGUAGES:
        raise ValueError(f"set_language({language!r}): the checks speak {' and '.join(map(repr, LANGUAGES))}; "
                         f"pass one of them")
    _language = language


def language() -> str:
    """Return the language the checks answer in now."""
    return _language


def _templates(node: ast.expr) -> list[tuple[str, list[str]]]:
    """The messages an expression can give, each written as a template: literal text with {0}, {1}, … where values
    go, and the source of each value. Both branches of `a if c else b` count, and `a + b` gives every pairing;
    anything else that is not a string gives nothing."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [(node.value.replace("{", "{{").replace("}", "}}"), [])]
    if isinstance(node, ast.JoinedStr):
        text, values = "", []
        for part in node.values:
            if isinstance(part, ast.Constant):
                text += str(part.value).replace("{", "{{").replace("}", "}}")
            else:
                text += "{%d}" % len(values)
                values.append(ast.unparse(part))
        return [(text, values)]
    if isinstance(node, ast.IfExp):
        return _templates(node.body) + _templates(node.orelse)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        pairs = []
        for left, left_values in _templates(node.left):
            for right, right_values in _templates(node.right):
                shift = len(left_values)
                moved = _PLACEHOLDER.sub(lambda m: "{%d}" % (int(m.group(1)) + shift), right)
                pairs.append((left + moved, left_values + right_values))
        return pairs
    return []


def extract(folder: Path = CHECKS, package: Path | None = PACKAGE) -> list[Segment]:
    """Every message the checks in `folder` can print, and every text marked `N_(...)` or `translate(...)` in the
    modules of `package` (None: the checks only), as gettext segments (the English template as msgid)."""
    found = []
    for path in sorted(folder.glob("*.py")):
        found += _messages(path, _HINT_ARGUMENT, checks=True, where=f"labutils/checks/{path.name}")
    if package is not None:
        for path in sorted(package.glob("*.py")):
            if path.name != "i18n.py":
                found += _messages(path, _MARKED, checks=False, where=f"labutils/{path.name}")
    return found


def _messages(path: Path, calls: dict[str, int], *, checks: bool, where: str) -> list[Segment]:
    """The messages of one module: the arguments of `calls`, and in a check also what it returns or names `hint`
    or `message`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    # where a message is: its file and function (not its line, so that editing the code around it leaves the
    # catalogue as it is)
    owner = {id(node): top.name for top in tree.body if isinstance(top, (ast.FunctionDef, ast.ClassDef))
             for node in ast.walk(top)}
    found = []
    for node in ast.walk(tree):
        candidates = []
        if isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            index = calls.get(name)
            if index is not None and len(node.args) > index:
                candidates = [node.args[index]]
            elif not checks and name in _ERRORS:  # its problem and its fix, by position or by name
                candidates = node.args[1:3] + [k.value for k in node.keywords if k.arg in ("problem", "fix")]
            elif not checks and name == "Format":
                positions, keywords = _FORMAT_TEXTS
                candidates = [node.args[i] for i in positions if i < len(node.args)] + \
                    [k.value for k in node.keywords if k.arg in keywords]
        elif checks and isinstance(node, ast.Return) and node.value is not None:
            candidates = [node.value]
        elif checks and isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id in ("hint", "message")
                                                             for t in node.targets):
            candidates = [node.value]
        elif not checks and isinstance(node, ast.Assign):  # fix = "...", or what, fix = "...", "..." for an error
            candidates = _assigned(node, ("problem", "fix", "what"))
        for candidate in candidates:
            is_template = isinstance(candidate, ast.Constant) and isinstance(candidate.value, str) and \
                _PLACEHOLDER.search(candidate.value)  # N_("{0}: {1}. Fix: {2}"): filled by translate_parts
            for text, values in [(candidate.value, [])] if is_template else _templates(candidate):
                words = re.sub(r"\{\d+\}", "", text)  # "a {0}" would stand for any text that starts with "a "
                if (re.search(r"[A-Za-z]{3,}", text) and " " in text) if checks else re.search(r"[A-Za-z]{3,}", words):
                    found.append(Segment(text, None, f"{where}:{owner.get(id(candidate), 'module')}", tuple(values)))
    return found


def _assigned(node: ast.Assign, names: tuple[str, ...]) -> list[ast.expr]:
    """The values assigned to any of `names` by `node`, one by one for `a, b = x, y`."""
    values = []
    for target in node.targets:
        if isinstance(target, ast.Name) and target.id in names:
            values.append(node.value)
        elif isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
            values += [v for t, v in zip(target.elts, node.value.elts) if isinstance(t, ast.Name) and t.id in names]
    return values


@functools.cache
def _catalogue() -> tuple[dict[str, str], list[tuple[re.Pattern, list[int], str]], dict[str, str]]:
    """The usable translations of the catalogue file. A catalogue that cannot be read gives none, said once: the
    lab then answers in English, and never raises."""
    import polib

    try:
        if not CATALOGUE.is_file():  # polib would read the path itself as the catalogue's text
            raise FileNotFoundError("no such file")
        entries = polib.pofile(str(CATALOGUE))
    except (OSError, ValueError, UnicodeDecodeError) as err:
        print(f"The checks answer in English: their Chinese messages, {CATALOGUE}, cannot be read ({err}). "
              "Restore the file with `git checkout labutils/locale/zh-CN.po`, or reinstall the lab with `make setup`.")
        entries = []
    return table(entries)


def table(entries) -> tuple[dict[str, str], list[tuple[re.Pattern, list[int], str]], dict[str, str]]:
    """The usable translations of catalogue entries: messages without values by their text, templates as patterns
    (longest first), and templates by their text."""
    exact, patterns, templates = {}, [], {}
    for entry in entries:
        if not entry.msgstr or "fuzzy" in entry.flags or entry.obsolete:
            continue
        parts = _PLACEHOLDER.split(entry.msgid)
        if len(parts) == 1:
            exact[entry.msgid.replace("{{", "{").replace("}}", "}")] = entry.msgstr.replace("{{", "{").replace(
                "}}", "}")
            continue
        templates[entry.msgid] = entry.msgstr
        literal = [re.escape(text.replace("{{", "{").replace("}}", "}")) for text in parts[::2]]
        order = [int(number) for number in parts[1::2]]
        regex = "".join(text + ("(.*?)" if i < len(order) else "") for i, text in enumerate(literal))
        patterns.append((sum(map(len, parts[::2])), re.compile(regex, re.S), order, entry.msgstr))
    patterns.sort(key=lambda p: -p[0])
    return exact, [(regex, order, msgstr) for _, regex, order, msgstr in patterns], templates


def translate_parts(template: str, *values: str, translations: tuple | None = None) -> str:
    """Return `template` ("{0}: {1}. Fix: {2}") filled with `values`, each translated, in the language set by
    set_language: where a message is made of parts, this finds where each ends without guessing."""
    if translations is None:
        if _language == "en":
            return template.format(*values)
        translations = _catalogue()
    chinese = translations[2].get(template, template)
    try:
        return chinese.format(*[translate(value, translations) for value in values])
    except (IndexError, KeyError, ValueError):  # a translation whose braces were edited wrong
        return template.format(*values)


def translate(message: str, translations: tuple | None = None) -> str:
    """Return a message of the lab in the language set by set_language (as it is, when no translation matches);
    with `translations` (made by `table`), in Chinese from them."""
    if translations is None:
        if _language == "en":
            return message
        translations = _catalogue()
    exact, patterns, _ = translations
    if message in exact:
        return exact[message]
    for regex, order, msgstr in patterns:
        match = regex.fullmatch(message)
        if match:
            values = {number: translate(match.group(i + 1), translations) for i, number in enumerate(order)}
            try:
                return msgstr.format(*[values[i] for i in range(len(values))])
            except (IndexError, KeyError, ValueError):  # a translation whose braces were edited wrong
                return message
    return message
