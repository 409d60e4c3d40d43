"""docs/hardening.md is kept honest: every row is there, every test it names exists, and every
test named after a row (`test_row29_...`) is named in that row."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "hardening.md"
ROWS = 46


def _rows() -> dict[int, str]:
    rows = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        match = re.match(r"\| (\d+) \|", line)
        if match:
            rows[int(match.group(1))] = line
    return rows


def _cited(line: str) -> set[tuple[str, str]]:
    """(test file, test name) for each `file.py::name` and following `::name` in a row."""
    cited, current = set(), None
    for ref in re.findall(r"`([\w./]*::\w+)`", line):
        path, _, name = ref.partition("::")
        current = path or current
        cited.add((current, name))
    return cited


def _defined() -> dict[str, set[str]]:
    return {path.name: set(re.findall(r"^def (test_\w+)", path.read_text(), re.M))
            for path in (ROOT / "tests").glob("test_*.py")}


def test_every_row_is_in_the_table():
    assert sorted(_rows()) == list(range(1, ROWS + 1))


def test_every_cited_test_exists():
    defined = _defined()
    for number, line in _rows().items():
        for path, name in _cited(line):
            assert name in defined.get(path, set()), f"row {number} cites {path}::{name}"


def test_every_row_test_is_cited_in_its_row():
    rows = _rows()
    for path, names in _defined().items():
        for name in (n for n in names if n.startswith("test_row")):
            for number in map(int, re.findall(r"row(\d+)_", name)):
                assert (path, name) in _cited(rows[number]), \
                    f"{path}::{name} is not cited in row {number} of docs/hardening.md"
