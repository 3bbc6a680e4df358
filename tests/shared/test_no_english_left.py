"""No user-facing English outside the catalogues: every sentence-like string literal in the code
that serves users (the bots, the page, the API, the core's texts) is inside ``t._``/``t.n_``/
``t.p_``/``N_``, or is one of the kinds of text users never read (log lines, docstrings,
exception details for the logs, the operator's CLI and settings, metric names).

How: every string literal (f-strings included) with two words or more of letters is looked at;
those in a translation call, a docstring, a logging call, an operator-facing exception or a
``detail=`` are skipped; what is left must be listed in ALLOWED with the reason users never
read it. A new user-facing sentence written in English makes this test fail.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: The code users read texts from (the CLI, the bench and the worker's logs are for operators).
SCANNED = ["bots", "shared", "worker/pipeline.py"]
#: Files with no user-facing text at all: configuration, logs, metrics, storage, Redis layout.
OPERATOR_ONLY = {
    "bots/split.py",  # `stembot split`: the operator's terminal
    "bots/split_mixes.py",  # `stembot split --mix`: the same terminal
    "shared/config.py",
    "shared/logs.py",
    "shared/metrics.py",
    "shared/keys.py",
    "shared/redis_server.py",
    "shared/health.py",
    "shared/lua.py",
    "shared/i18n/catalogs.py",
}
TRANSLATING = {"_", "n_", "p_", "N_", "locale_str"}
LOGGING = {"debug", "info", "warning", "error", "exception", "critical", "log"}
#: Exceptions whose text goes to the logs or an operator (not to a chat).
OPERATOR_EXCEPTIONS = re.compile(
    r"(ValueError|TypeError|RuntimeError|KeyError|AssertionError|NotImplementedError|"
    r"\w*StartupError|ConfigError|\w*Refused|PullError|OSError|SystemExit|ModelLoadingError)$"
)
#: Two words of letters with a space between: a sentence, not a name, path or pattern.
WORDS = re.compile(r"(?<![\\\w.:/%{-])[A-Za-z]{2,}[,;:!?']? [A-Za-z]{2,}\b")
#: Lua scripts and header values, not sentences.
CODE = re.compile(r"redis\.call|filename\*?=|max-age|no-cache|realm=|default-src")
#: HTML tags (with their attributes): markup around texts filled in from the catalogues.
TAGS = re.compile(r"<[^>]*>")
#: Calls whose string arguments are code or data: Lua, SQL-like scripts, regexes, headers.
CODE_CALLS = {"LuaScript", "compile", "fullmatch", "match", "search", "sub", "split"}

#: (file, text) pairs users never read, each with its reason.
ALLOWED: dict[tuple[str, str], str] = {
    ("shared/youtube.py", "odd characters"): "UnsafeUrl's detail, for the logs",
    ("shared/youtube.py", "credentials in the URL"): "UnsafeUrl's detail, for the logs",
    ("shared/youtube.py", "IP literal"): "UnsafeUrl's detail, for the logs",
    ("shared/youtube.py", "numeric host"): "UnsafeUrl's detail, for the logs",
    ("shared/youtube.py", "local host name"): "UnsafeUrl's detail, for the logs",
    ("shared/media.py", "Estimating duration from bitrate"): "ffprobe's log line we look for",
    ("bots/telegram/messenger.py", "not modified"): "the Bot API's error text we look for",
    ("bots/telegram/messenger.py", "too large"): "the Bot API's error text we look for",
    ("bots/telegram/app.py", "long polling"): "how the bot runs, for the start-up log line",
    ("bots/telegram/app.py", "delivery only"): "how the bot runs, for the start-up log line",
}


def _callee(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return ""


def _literal_text(node: ast.AST) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(
            v.value if isinstance(v, ast.Constant) and isinstance(v.value, str) else " {} "
            for v in node.values
        )
    return ""


class _Finder(ast.NodeVisitor):
    def __init__(self) -> None:
        self.found: list[tuple[int, str]] = []
        self._skip: set[int] = set()

    def _skip_tree(self, node: ast.AST) -> None:
        for child in ast.walk(node):
            self._skip.add(id(child))

    def visit_Module(self, node: ast.Module) -> None:
        self._docstring(node)
        self.generic_visit(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._docstring(node)
        self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._docstring(node)
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def _docstring(self, node: ast.Module | ast.ClassDef | ast.FunctionDef) -> None:
        body = node.body
        if body and isinstance(body[0], ast.Expr):
            self._skip_tree(body[0])

    def visit_Call(self, node: ast.Call) -> None:
        name = _callee(node)
        if (
            name in TRANSLATING
            or name in LOGGING
            or name in CODE_CALLS
            or OPERATOR_EXCEPTIONS.search(name)
        ):
            self._skip_tree(node)
        for keyword in node.keywords:
            if keyword.arg in ("detail", "help", "description", "metavar", "reason"):
                self._skip_tree(keyword.value)
        self.generic_visit(node)

    def visit_Assert(self, node: ast.Assert) -> None:
        self._skip_tree(node)

    def _text(self, node: ast.Constant | ast.JoinedStr) -> None:
        if id(node) in self._skip:
            return
        self._skip_tree(node)
        text = _literal_text(node)
        if WORDS.search(TAGS.sub(" ", text)) and not CODE.search(text):
            self.found.append((node.lineno, text))

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str):
            self._text(node)

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        self._text(node)


def _files() -> list[Path]:
    files: list[Path] = []
    for entry in SCANNED:
        path = ROOT / entry
        files.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path])
    return [f for f in files if str(f.relative_to(ROOT)) not in OPERATOR_ONLY]


def test_every_sentence_users_read_is_in_the_catalogues() -> None:
    left: list[str] = []
    for path in _files():
        rel = str(path.relative_to(ROOT))
        finder = _Finder()
        finder.visit(ast.parse(path.read_text(encoding="utf-8")))
        for line, text in finder.found:
            if (rel, text) not in ALLOWED:
                left.append(f"{rel}:{line}: {text!r}")
    assert left == [], "\n".join(left)
