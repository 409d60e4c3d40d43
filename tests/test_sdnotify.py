"""sd_notify against a real AF_UNIX datagram socket the test binds."""

import signal
import socket
import time

import pytest

from appliance.sdnotify import Notifier, Watchdog, progressing
from tests.conftest import image_bytes
from tools.live_server import LiveServer, post_image


@pytest.fixture
def listener(tmp_path):
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(10)
    yield str(path), sock
    sock.close()


def _messages(sock, until, timeout=15.0):
    found, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found.append(sock.recv(4096).decode())
        except TimeoutError:
            break
        if until(found):
            return found
    raise AssertionError(f"never saw the expected messages: {found}")


def test_without_a_socket_nothing_is_sent():
    notifier = Notifier({})
    assert not notifier.enabled and notifier.send("READY=1") is False


def test_abstract_socket_name():
    assert Notifier({"NOTIFY_SOCKET": "@/org/x"}).address == "\0/org/x"


class Stuck:
    def __init__(self, since):
        self.since = since

    def stuck(self, now, limit):
        return self.since is not None and now - self.since > limit


def test_watchdog_beats_only_while_progressing(listener):
    path, sock = listener
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"})
    runners = [Stuck(None)]
    dog = Watchdog(notifier, ready=lambda: True,
                   progressing=lambda: progressing(runners, 1.0, now=100.0),
                   status=lambda: "ok")
    assert dog.beat() is True
    assert sock.recv(4096) == b"READY=1\nSTATUS=ok"
    assert sock.recv(4096) == b"WATCHDOG=1"
    runners[0] = Stuck(98.5)  # one job has run 1.5 s against a 1 s limit: wedged
    assert dog.beat() is False
    assert sock.recv(4096) == b"STATUS=ok"
    dog.stop()
    assert sock.recv(4096).startswith(b"STOPPING=1")


def test_real_server_ready_watchdog_and_stopping(listener, models_dir, tmp_path):
    path, sock = listener
    env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"}
    with LiveServer(models_dir, tmp_path / "state", env=env) as live:
        seen = _messages(sock, lambda m: any("READY=1" in x for x in m))
        assert any(x.startswith("READY=1\nSTATUS=4 models serving") for x in seen)
        assert post_image(f"{live.url}/v1/models/tiny-classify/infer", image_bytes())[0] == 200
        beats = _messages(sock, lambda m: m.count("WATCHDOG=1") >= 3)
        assert any("1 requests" in x for x in beats)
        live.stop(signal.SIGTERM)
        _messages(sock, lambda m: any(x.startswith("STOPPING=1") for x in m))
