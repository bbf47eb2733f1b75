"""``ast.parse`` and ``compile`` under one lock, for the grader's own threads.

Some CPython 3.11 releases (seen with Debian 12's 3.11.2) keep the AST converter's recursion
depth in state shared between threads: two grader threads parsing at once can fail with
"SystemError: AST constructor recursion depth mismatch", and a correct answer lost a question
that way under load. Parsing is cheap next to grading, so the grader serialises it.
"""

from __future__ import annotations

import ast
import threading

_LOCK = threading.Lock()


def parse(source: str) -> ast.Module:
    with _LOCK:
        return ast.parse(source)


def compile_source(source: str, filename: str, mode: str = "exec"):
    with _LOCK:
        return compile(source, filename, mode)
