"""The language the exercise checks answer in: English, or Chinese from the catalogue labutils/locale/zh-CN.po."""
from __future__ import annotations

import ast
import functools
import re
from dataclasses import dataclass
from pathlib import Path

LANGUAGES = ("en", "zh-CN")
CATALOGUE = Path(__file__).resolve().parent / "locale" / "zh-CN.po"
CHECKS = Path(__file__).resolve().parent / "checks"
_language = "en"

# Where a check's message is written: the hint of _expect(condition, hint), the text of _Wrong(text), a check's
# `return "success message"`, and the hint `fix` of _weights_only_round_trip(obj, fix).
_HINT_ARGUMENT = {"_expect": 1, "_Wrong": 0, "_weights_only_round_trip": 1, "translate": 0}
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


def extract(folder: Path = CHECKS) -> list[Segment]:
    """Every message the checks in `folder` can print, as gettext segments (the English template as msgid)."""
    found = []
    for path in sorted(folder.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        # where a message is: its file and function (not its line, so that editing the code around it leaves the
        # catalogue as it is)
        owner = {id(node): top.name for top in tree.body if isinstance(top, (ast.FunctionDef, ast.ClassDef))
                 for node in ast.walk(top)}
        for node in ast.walk(tree):
            candidates = []
            if isinstance(node, ast.Call):
                name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
                index = _HINT_ARGUMENT.get(name)
                if index is not None and len(node.args) > index:
                    candidates = [node.args[index]]
            elif isinstance(node, ast.Return) and node.value is not None:
                candidates = [node.value]
            elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id in ("hint", "message")
                                                      for t in node.targets):
                candidates = [node.value]
            for candidate in candidates:
                for text, values in _templates(candidate):
                    if re.search(r"[A-Za-z]{3,}", text) and " " in text:
                        where = f"labutils/checks/{path.name}:{owner.get(id(candidate), 'module')}"
                        found.append(Segment(text, None, where, tuple(values)))
    return found


@functools.cache
def _catalogue() -> tuple[dict[str, str], list[tuple[re.Pattern, list[int], str]]]:
    """The usable translations: messages without values by their text, templates as patterns (longest first).
    A catalogue that cannot be read gives none, said once: the checks then answer in English, and never raise."""
    import polib

    exact, patterns = {}, []
    try:
        if not CATALOGUE.is_file():  # polib would read the path itself as the catalogue's text
            raise FileNotFoundError("no such file")
        entries = polib.pofile(str(CATALOGUE))
    except (OSError, ValueError, UnicodeDecodeError) as err:
        print(f"The checks answer in English: their Chinese messages, {CATALOGUE}, cannot be read ({err}). "
              "Restore the file with `git checkout labutils/locale/zh-CN.po`, or reinstall the lab with `make setup`.")
        entries = []
    for entry in entries:
        if not entry.msgstr or "fuzzy" in entry.flags or entry.obsolete:
            continue
        parts = _PLACEHOLDER.split(entry.msgid)
        if len(parts) == 1:
            exact[entry.msgid.replace("{{", "{").replace("}}", "}")] = entry.msgstr.replace("{{", "{").replace(
                "}}", "}")
            continue
        literal = [re.escape(text.replace("{{", "{").replace("}}", "}")) for text in parts[::2]]
        order = [int(number) for number in parts[1::2]]
        regex = "".join(text + ("(.*?)" if i < len(order) else "") for i, text in enumerate(literal))
        patterns.append((sum(map(len, parts[::2])), re.compile(regex, re.S), order, entry.msgstr))
    patterns.sort(key=lambda p: -p[0])
    return exact, [(regex, order, msgstr) for _, regex, order, msgstr in patterns]


def translate(message: str) -> str:
    """Return a check's message in the language set by set_language (as it is, when no translation matches)."""
    if _language == "en":
        return message
    exact, patterns = _catalogue()
    if message in exact:
        return exact[message]
    for regex, order, msgstr in patterns:
        match = regex.fullmatch(message)
        if match:
            values = {number: translate(match.group(i + 1)) for i, number in enumerate(order)}
            try:
                return msgstr.format(*[values[i] for i in range(len(values))])
            except (IndexError, KeyError, ValueError):  # a translation whose braces were edited wrong
                return message
    return message
