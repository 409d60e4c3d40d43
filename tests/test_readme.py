"""README.md is kept true where a test can tell: its Layout names every module."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_readme_layout_names_every_module():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    layout = text.split("## Layout", 1)[1].split("```", 2)[1]
    root = ROOT
    modules = [p for p in (root / "appliance").rglob("*.py") if p.name != "__init__.py"]
    modules += [p for p in (root / "tools").rglob("*.py") if p.name != "__init__.py"]
    missing = [str(p.relative_to(root)) for p in modules if p.name not in layout]
    assert missing == [], "README.md's Layout does not name these"
