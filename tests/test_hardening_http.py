"""Hardening rows that need a real server and real sockets: chunked bodies over the limit
(row 4), slow clients (row 13) and overload (row 14)."""

import socket
import threading
import time

import pytest

from tests import models as tiny
from tests.conftest import image_bytes
from tools.live_server import LiveServer, get, post_image

pytestmark = pytest.mark.slow


def test_row4_chunked_body_over_the_limit_is_refused(models_dir, tmp_path):
    env = {"APPLIANCE_SERVER_MAX_UPLOAD_MB": "0.1", "APPLIANCE_MODELS_MAX_INSTALL_MB": "0"}
    with LiveServer(models_dir, tmp_path / "state", env=env) as live, \
            socket.create_connection(("127.0.0.1", live.port), timeout=10) as sock:
        live.wait_ready()
        sock.sendall(b"POST /v1/models/tiny-classify/infer HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: image/jpeg\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"\xff" * 65536
        try:
            for _ in range(40):  # 2.5 MB against a 0.1 MB limit
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed the connection: also a refusal
        reply = sock.recv(4096)
        assert reply.split(b" ")[1] in (b"413", b"400"), reply[:200]


def test_row13_slow_clients_do_not_block_the_box(models_dir, tmp_path):
    with LiveServer(models_dir, tmp_path / "state") as live:
        live.wait_ready()
        slow = []
        try:
            for _ in range(200):
                s = socket.create_connection(("127.0.0.1", live.port), timeout=10)
                s.sendall(b"POST /v1/models/tiny-classify/infer HTTP/1.1\r\nHost: x\r\n")
                slow.append(s)  # ... and never finish the request
            started = time.monotonic()
            assert get(live.url + "/healthz")[0] == 200
            assert post_image(f"{live.url}/v1/models/tiny-classify/infer",
                              image_bytes())[0] == 200
            assert time.monotonic() - started < 5
        finally:
            for s in slow:
                s.close()


def test_row14_twice_the_capacity_gets_503_or_429_with_retry_after(tmp_path):
    folder = tmp_path / "slow-models"
    tiny.write_bundle(folder, "slow", model=tiny.slow_classify_model(matmuls=60))
    env = {"APPLIANCE_MODELS_QUEUE_SIZE": "2", "APPLIANCE_MODELS_INTRA_OP_THREADS": "1",
           "APPLIANCE_AUTH_RATE_PER_MINUTE": "0"}
    with LiveServer(folder, tmp_path / "state", env=env) as live:
        live.wait_ready()
        results = []
        lock = threading.Lock()
        deadline = time.monotonic() + 4

        def client():
            while time.monotonic() < deadline:
                code, _, headers = post_image(f"{live.url}/v1/models/slow/infer", image_bytes())
                with lock:
                    results.append((code, headers.get("Retry-After")))

        threads = [threading.Thread(target=client) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        rss = live.rss_mb()
    codes = {code for code, _ in results}
    assert codes <= {200, 503}, codes
    assert 200 in codes and 503 in codes
    assert all(retry for code, retry in results if code == 503)
    assert rss < 500
