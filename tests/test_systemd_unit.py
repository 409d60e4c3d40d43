"""systemd/appliance.service: a valid unit with an exposure of 2.0 or lower."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parent.parent / "systemd" / "appliance.service"


@pytest.fixture
def analyze():
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("needs Debian's systemd package (systemd-analyze)")
    return tool


def test_security_exposure_is_at_most_2(analyze, tmp_path):
    unit = tmp_path / UNIT.name
    shutil.copyfile(UNIT, unit)
    done = subprocess.run([analyze, "security", "--offline=yes", str(unit)],
                          capture_output=True, text=True, timeout=60)
    found = re.search(r"Overall exposure level for appliance.service: ([\d.]+)", done.stdout)
    assert found, done.stdout + done.stderr
    assert float(found.group(1)) <= 2.0


def test_unit_verifies(analyze, tmp_path):
    unit = tmp_path / UNIT.name
    shutil.copyfile(UNIT, unit)
    done = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True,
                          timeout=60)
    problems = [line for line in (done.stdout + done.stderr).splitlines()
                if line.strip() and "/opt/appliance/.venv/bin/appliance" not in line]
    assert problems == [], "\n".join(problems)


def test_the_unit_waits_for_ready_and_watches():
    text = UNIT.read_text()
    for line in ("Type=notify", "WatchdogSec=", "DynamicUser=yes", "ProtectSystem=strict",
                 "DevicePolicy=closed", "DeviceAllow=char-gpiochip rw",
                 "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
                 "Environment=ORT_DISABLE_TELEMETRY=1"):
        assert line in text


def test_kiosk_unit_verifies(analyze, tmp_path):
    unit = tmp_path / "appliance-kiosk.service"
    shutil.copyfile(UNIT.parent / unit.name, unit)
    done = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True,
                          timeout=60)
    problems = [line for line in (done.stdout + done.stderr).splitlines()
                if line.strip() and "/usr/bin/cage" not in line]
    assert problems == [], "\n".join(problems)
