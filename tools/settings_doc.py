"""The settings' documentation, made from their declarations in appliance/config.py (one
source): the README's table and systemd/appliance.toml.example.

    python tools/settings_doc.py          # say whether both are up to date (exit 1 if not)
    python tools/settings_doc.py --write  # rewrite them
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from appliance import config

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
EXAMPLE = ROOT / "systemd" / "appliance.toml.example"
BEGIN = "<!-- settings: made by tools/settings_doc.py from appliance/config.py -->"
END = "<!-- /settings -->"
EXAMPLE_HEAD = """\
# /etc/appliance/appliance.toml: the appliance's settings.
# Every setting is shown with its default, commented out; uncomment what you change.
# The same settings work as APPLIANCE_<SECTION>_<KEY> environment variables.
# `appliance check-config` prints the effective result; unknown keys are refused.
# (Made by tools/settings_doc.py from appliance/config.py.)
"""


def _shown(value) -> str:
    if isinstance(value, bool):
        return f"`{'true' if value else 'false'}`"
    if isinstance(value, float):
        return f"`{value:g}`"
    if value == "":
        return "empty"
    return f"`{value}`"


def table() -> str:
    """The README's settings table."""
    shown = config.shown_defaults()
    rows = ["| setting | default | meaning |", "| --- | --- | --- |"]
    for key, _kind, default, help_text in config.describe():
        rows.append(f"| `{key}` | {shown.get(key) or _shown(default)} | "
                    f"{help_text.replace('|', '/')} |")
    return "\n".join(rows) + "\n"


def example() -> str:
    """systemd/appliance.toml.example: every setting, commented out, with its help, as an
    installed box (not a checkout) has it."""
    with mock.patch.object(config, "_in_checkout", lambda: False):
        rows = config.describe()
    lines, section = [EXAMPLE_HEAD.rstrip("\n")], None
    for key, _kind, default, help_text in rows:
        name, _, field = key.partition(".")
        if name != section:
            lines += ["", f"[{name}]"]
            section = name
        lines += textwrap.wrap(help_text, 93, initial_indent="# ", subsequent_indent="# ",
                               break_on_hyphens=False)
        lines.append(f"# {field} = {config.toml_value(default)}")
    return "\n".join(lines) + "\n"


def readme_with_table(text: str) -> str:
    """`text` (the README) with its table between BEGIN and END made anew. Raises
    ValueError when the markers are missing."""
    head, found, rest = text.partition(BEGIN + "\n")
    _, found_end, tail = rest.partition(END)
    if not (found and found_end):
        raise ValueError(f"README.md has no {BEGIN} ... {END} block")
    return head + BEGIN + "\n" + table() + END + tail


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="rewrite both files")
    args = parser.parse_args(argv)
    wanted = {README: readme_with_table(README.read_text(encoding="utf-8")),
              EXAMPLE: example()}
    stale = [path for path, text in wanted.items()
             if path.read_text(encoding="utf-8") != text]
    if args.write:
        for path in stale:
            path.write_text(wanted[path], encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
        return 0
    for path in stale:
        print(f"{path.relative_to(ROOT)} is out of date: python tools/settings_doc.py --write")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
