"""The code stays in small pieces: no function in the product or the benchmarks is over 60 lines.

A function that long does several jobs, and the next change makes it longer; this keeps the
limit of issue 24 true once reached, naming each function that breaks it and where.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("glue_tf", "serving", "scripts", "bench")
MOST_LINES = 60


def _sources() -> list[Path]:
    return sorted(path for folder in FOLDERS for path in (ROOT / folder).rglob("*.py"))


def _too_long(source: str) -> list[tuple[int, str, int]]:
    """``(line, name, lines)`` of each function or method over :data:`MOST_LINES`, nested ones included;
    a function runs from its ``def`` (decorators left out) to its last line."""
    return [(node.lineno, node.name, node.end_lineno - node.lineno + 1)
            for node in ast.walk(ast.parse(source))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MOST_LINES]


def test_the_check_reads_every_folder():
    """A moved or emptied folder would make the check below pass over nothing."""
    for folder in FOLDERS:
        assert any(path.is_relative_to(ROOT / folder) for path in _sources()), folder


def test_a_long_method_is_found_and_a_function_at_the_limit_is_not():
    body = "".join(f"    x{i} = {i}\n" for i in range(MOST_LINES - 1))
    nested = "".join(f"    {line}\n" for line in body.splitlines())
    source = f"def fits():\n{body}\n\nclass C:\n    async def over(self):\n{nested}        pass\n"
    assert _too_long(source) == [(MOST_LINES + 4, "over", MOST_LINES + 1)]  # fits: lines 1-60


def test_no_function_is_over_60_lines():
    too_long = [f"{path.relative_to(ROOT)}:{line} {name} ({lines} lines)"
                for path in _sources() for line, name, lines in _too_long(path.read_text(encoding="utf-8"))]
    assert not too_long, f"split these into named steps of at most {MOST_LINES} lines: " + "; ".join(too_long)
