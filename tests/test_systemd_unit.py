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


def _directives() -> dict[str, list[str]]:
    """The unit's settings, comments left out: each key with its values in order."""
    found: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";")):
            key, value = line.split("=", 1)
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def test_the_unit_waits_for_ready_and_watches():
    unit = _directives()
    for key, value in (("Type", "notify"), ("DynamicUser", "yes"), ("ProtectSystem", "strict"),
                       ("DevicePolicy", "closed"), ("DeviceAllow", "char-gpiochip rw"),
                       ("Environment", "ORT_DISABLE_TELEMETRY=1"), ("ProtectProc", "invisible")):
        assert value in unit.get(key, []), key
    assert unit["WatchdogSec"]


def test_mdns_can_list_the_interfaces():
    # getifaddrs() and if_nameindex(), which zeroconf and the box use to find the addresses
    # to announce, open a netlink socket: without AF_NETLINK, "[Errno 97] Address family not
    # supported by protocol" and the box is never announced (tests/test_systemd_boot.py).
    families = " ".join(_directives()["RestrictAddressFamilies"]).split()
    assert set(families) == {"AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"}


def test_onnxruntime_can_read_proc_cpuinfo():
    # ProcSubset=pid hides /proc/cpuinfo, where onnxruntime's cpuinfo reads the CPU's
    # features (an ARM CPU's dot product for INT8): "Error in cpuinfo" in the journal.
    assert _directives().get("ProcSubset", ["all"])[-1] == "all"


def test_kiosk_unit_verifies(analyze, tmp_path):
    unit = tmp_path / "appliance-kiosk.service"
    shutil.copyfile(UNIT.parent / unit.name, unit)
    done = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True,
                          timeout=60)
    problems = [line for line in (done.stdout + done.stderr).splitlines()
                if line.strip() and "/usr/bin/cage" not in line]
    assert problems == [], "\n".join(problems)
