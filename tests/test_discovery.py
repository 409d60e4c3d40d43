"""mDNS on loopback only: a real `appliance serve` announces itself and a zeroconf browser in
the same test finds it, with its models in TXT."""

import pytest

from appliance import cli
from appliance.discovery import Advertiser, discover
from tools.live_server import LiveServer

pytestmark = pytest.mark.slow
LOOPBACK = "127.0.0.1"


def test_advertiser_is_found_by_a_browser():
    advertiser = Advertiser("test-box", 18080, "9.9", interfaces=LOOPBACK)
    found = []
    try:
        advertiser.start(["a", "b"])
        # Multicast on a loaded CI machine can miss one browse window; three are plenty.
        for _ in range(3):
            found = [b for b in discover(2.0, LOOPBACK) if b.name == "test-box"]
            if found:
                break
    finally:
        advertiser.close()
    assert found, "the advertised box was not found in three 2 s browses"
    box = found[0]
    assert (box.address, box.port, box.path, box.version, box.models) == (
        "127.0.0.1", 18080, "/v1", "9.9", "a,b")


def test_a_running_box_announces_its_models(models_dir, tmp_path, capsys):
    env = {"APPLIANCE_DISCOVERY_ENABLED": "true", "APPLIANCE_DISCOVERY_NAME": "gallery-one",
           "APPLIANCE_DISCOVERY_INTERFACES": LOOPBACK}
    with LiveServer(models_dir, tmp_path / "state", env=env) as live:
        live.wait_ready()
        assert "http://gallery-one.local:" in "".join(live.output)
        found = []
        for _ in range(3):
            assert cli.main(["discover", "--timeout", "2", "--interfaces", LOOPBACK]) == 0
            found = [line for line in capsys.readouterr().out.splitlines()
                     if line.startswith("gallery-one")]
            if found:
                break
        assert found and f":{live.port}/v1" in found[0] and "tiny-classify" in found[0]
