"""The benchmark's HTTP client: response parsing, and a closed loop against a real server."""

import http.server
import threading

import pytest

from tools.bench.client import PeakMemory, build_request, closed_loop, parse_response


def test_content_length_response():
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1"
    response, used = parse_response(raw)
    assert (response.status, response.body, response.close) == (200, b"hello", False)
    assert raw[used:] == b"HTTP/1.1"
    assert parse_response(raw[:30]) is None


def test_chunked_response():
    raw = b"HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    response, used = parse_response(raw)
    assert (response.status, response.body, used) == (503, b"abcde", len(raw))
    assert parse_response(raw[:-2]) is None


def test_http10_and_close_delimited_bodies():
    raw = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\npartial"
    assert parse_response(raw) is None
    response, _ = parse_response(raw, eof=True)
    assert response.close and response.body == b"partial"
    closing = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    assert parse_response(closing)[0].close


class _Echo(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # closes after each answer: the client must reconnect

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200 if body == b"ping" else 400)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def echo_port():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_closed_loop_counts_statuses_and_reconnects(echo_port):
    good = closed_loop(echo_port, build_request("/", b"ping", "text/plain"), 3, 0.3, 0.05)
    assert good.ok > 3 and good.errors == 0 and good.first_body == b"ping"
    summary = good.summary()
    assert summary["p50_ms"] <= summary["p99_ms"] and summary["throughput_rps"] > 0
    bad = closed_loop(echo_port, build_request("/", b"pong", "text/plain"), 1, 0.2, 0.0)
    assert bad.ok == 0 and bad.statuses.get(400, 0) > 0


def test_peak_memory_of_this_process():
    import os

    with PeakMemory(os.getpid(), interval=0.01) as memory:
        ballast = bytearray(64 * 1024 * 1024)
        ballast[::4096] = b"x" * len(ballast[::4096])
        threading.Event().wait(0.1)
    assert memory.peak_mb > 64
