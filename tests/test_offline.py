"""Nothing phones home: `appliance serve` handling requests opens no connection and makes no
DNS lookup beyond loopback, as seen by strace on every thread of the process."""

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import photo_bytes
from tools.live_server import LiveServer, get, post_image

pytestmark = pytest.mark.slow
TRACE = ["strace", "-f", "-qq", "-e", "trace=connect,sendto,sendmsg"]
INET = re.compile(r'sa_family=AF_INET, sin_port=htons\((\d+)\), sin_addr=inet_addr\("([\d.]+)"\)')
INET6 = re.compile(r'sa_family=AF_INET6, sin6_port=htons\((\d+)\).*?inet_pton\(AF_INET6, '
                   r'"([0-9a-f:.]+)"')
LOOKUP_SOCKETS = ("/var/run/nscd/socket", "/run/nscd/socket", "/run/systemd/resolve")


def outside_traffic(trace: str) -> list[str]:
    """strace lines that reach beyond loopback or look a name up."""
    bad = []
    for line in trace.splitlines():
        for port, address in INET.findall(line) + INET6.findall(line):
            loopback = address.startswith("127.") or address in ("::1", "::ffff:127.0.0.1")
            if port == "53" or not loopback:
                bad.append(line)
        if any(path in line for path in LOOKUP_SOCKETS):
            bad.append(line)
    return bad


@pytest.fixture
def strace():
    if shutil.which("strace") is None:
        pytest.skip("needs Debian's strace package (apt-get install strace)")
    probe = subprocess.run([*TRACE, "-o", "/dev/null", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"strace cannot trace here: {probe.stderr.decode().strip()}")
    return TRACE


def test_the_detector_sees_a_dns_lookup(strace, tmp_path):
    # In a network namespace of its own, so the lookup it provokes goes nowhere.
    if subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode != 0:
        pytest.skip("unshare -n is not permitted here (needs root or user namespaces)")
    out = tmp_path / "trace"
    code = "import socket\ntry: socket.getaddrinfo('example.com', 80)\nexcept OSError: pass"
    subprocess.run([*strace, "-o", str(out), "unshare", "-n", sys.executable, "-c", code],
                   check=True, timeout=60)
    assert outside_traffic(out.read_text())


def test_serving_requests_stays_on_loopback(strace, models_dir, tmp_path):
    out = tmp_path / "trace"
    with LiveServer(models_dir, tmp_path / "state", prefix=[*strace, "-o", str(out)]) as live:
        live.wait_ready()
        for name in ("tiny-classify", "tiny-embed", "tiny-negative"):
            for _ in range(3):
                assert post_image(f"{live.url}/v1/models/{name}/infer", photo_bytes())[0] == 200
        for path in ("/", "/v1/models", "/metrics", "/openapi.json"):
            assert get(live.url + path)[0] == 200
        time.sleep(6)  # onnxruntime's telemetry lookup came a few seconds after load
    trace = Path(out).read_text()
    assert "connect(" in trace or "sendto(" in trace  # the trace saw the process at all
    assert outside_traffic(trace) == []
