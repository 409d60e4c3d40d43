"""`make install` into a staging root (DESTDIR), twice, then an upgrade and an uninstall."""

import os
import subprocess
from pathlib import Path

import pytest

from appliance import config

pytestmark = pytest.mark.slow
SCRIPT = config.CHECKOUT / "systemd" / "install.sh"


def _run(root: Path, action: str = "install", **env) -> str:
    done = subprocess.run(["bash", str(SCRIPT), action], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "DESTDIR": str(root), **env})
    assert done.returncode == 0, done.stderr
    return done.stdout


def _tree(root: Path) -> dict[str, float]:
    return {str(p.relative_to(root)): p.stat().st_mtime for p in root.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}


def test_install_twice_then_upgrade_and_uninstall(tmp_path):
    root = tmp_path / "root"
    _run(root)
    venv = root / "opt/appliance/.venv/bin/appliance"
    version = subprocess.run([str(venv), "--version"], capture_output=True, text=True)
    assert version.stdout.startswith("appliance ")
    unit = root / "etc/systemd/system/appliance.service"
    assert unit.read_text() == (config.CHECKOUT / "systemd/appliance.service").read_text()
    conf = root / "etc/appliance/appliance.toml"
    assert "# port = 8080" in conf.read_text()
    for bundle in (config.CHECKOUT / "models").glob("*/manifest.json"):
        assert (root / "var/lib/appliance/models" / bundle.parent.name / "manifest.json").is_file()

    before = _tree(root)
    assert "nothing to change" in _run(root)
    assert _tree(root) == before  # idempotent: not one file touched

    conf.write_text("[server]\nport = 9000\n")  # the owner's edit
    token = root / "var/lib/appliance/admin-token"
    token.write_text("secret\n")
    _run(root)
    assert conf.read_text() == "[server]\nport = 9000\n" and token.read_text() == "secret\n"

    assert "kept /etc/appliance" in _run(root, "uninstall")
    assert not (root / "opt/appliance").exists() and not unit.exists()
    assert conf.exists() and token.exists()
    _run(root, "uninstall", PURGE="1")
    assert not conf.exists() and not token.exists()


def test_example_config_names_every_setting():
    text = (config.CHECKOUT / "systemd" / "appliance.toml.example").read_text()
    for key, *_ in config.describe():
        section, name = key.split(".")
        assert f"[{section}]" in text and f"# {name} = " in text, key
