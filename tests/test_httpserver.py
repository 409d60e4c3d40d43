"""The hardened waitress layer, piece by piece (the parser, the error answers, the lanes) and
the per-route body table it reads. Over real sockets: tests/test_hardening_http.py."""

import contextlib
import json
import socket
import threading
import time

import pytest
from waitress.adjustments import Adjustments

from appliance import config
from appliance.api import create_app, limits
from appliance.httpserver import (
    BODY_READ,
    AmbiguousLength,
    BodyTooLarge,
    LaneDispatcher,
    LimitedParser,
    is_light,
    json_error,
)


@pytest.fixture
def body_limits(app):
    return limits.BodyLimits(app.url_map, app.extensions["appliance"].settings)


def _parse(body_limits, raw: bytes, client: str = "192.0.2.1") -> LimitedParser:
    parser = LimitedParser(Adjustments(), body_limits, client)
    while raw and not parser.completed:
        raw = raw[parser.received(raw):]
    return parser


def test_every_route_that_takes_a_body_is_in_the_table(app):
    assert limits.unlisted(app.url_map) == []


def test_a_route_missing_from_the_table_is_found(settings):
    app = create_app(settings)
    app.add_url_rule("/v1/new", "new.upload", lambda: "", methods=["POST"])
    assert limits.unlisted(app.url_map) == ["new.upload"]


def test_each_route_gets_its_kind_of_cap(body_limits, settings):
    image = int(settings.server.max_upload_mb * 1048576) + limits.FRAMING_BYTES
    assert body_limits.lookup("POST", "/v1/models/x/infer").bytes == image
    assert body_limits.lookup("POST", "/v1/infer").bytes == image
    assert body_limits.lookup("POST", "/v2/models/x/versions/1/infer").kind == limits.IMAGE
    assert body_limits.lookup("PUT", "/v1/models/x").kind == limits.INSTALL
    for method, path in [("POST", "/healthz"), ("GET", "/v1/models/x/infer"),
                         ("POST", "/no/such/route"), ("POST", "/v1/models/x/activate")]:
        assert body_limits.lookup(method, path).bytes == limits.SMALL_BYTES, path
    assert body_limits.largest() == (settings.models.max_install_mb << 20) + limits.FRAMING_BYTES


def test_a_declared_length_over_the_cap_is_refused_at_the_headers(body_limits):
    parser = _parse(body_limits, b"POST /healthz HTTP/1.1\r\nContent-Length: 503316480\r\n\r\n"
                    + b"\0" * 8192)
    assert parser.completed and isinstance(parser.error, BodyTooLarge)
    assert parser.body_rcv is None  # nothing of the body buffered
    assert "no request body larger than 16 KB (480.0 MB sent)" in parser.error.body
    small = _parse(body_limits, b"POST /healthz HTTP/1.1\r\nContent-Length: 26624\r\n\r\n")
    assert "no request body larger than 16 KB (26 KB sent)" in small.error.body  # not 0.0 MB


def test_expect_continue_is_not_sent_for_a_refused_body(body_limits):
    parser = _parse(body_limits, b"PUT /v1/models/x HTTP/1.1\r\nExpect: 100-continue\r\n"
                    b"Content-Length: 999999999999\r\n\r\n")
    assert isinstance(parser.error, BodyTooLarge) and not parser.expect_continue
    assert "models.max_install_mb" in parser.error.body


def test_an_upload_without_the_admin_token_is_refused_at_the_headers(app):
    from appliance.httpserver import Refused

    services = app.extensions["appliance"]
    gated = limits.BodyLimits(app.url_map, services.settings, admin=services.auth.require_admin)
    head = b"PUT /v1/models/x HTTP/1.1\r\n%sContent-Length: 1000\r\n\r\n"
    refused = _parse(gated, head % b"")
    assert isinstance(refused.error, Refused) and refused.error.code == 401
    assert refused.body_rcv is None
    from tests.conftest import ADMIN

    admitted = _parse(gated, head % b"Authorization: Bearer %s\r\n" % ADMIN.encode())
    assert admitted.error is None and not admitted.completed  # the body is read next
    answer = json.loads(json_error(refused.error))
    assert answer["error"]["code"] == "unauthorized"


def test_a_chunked_body_stops_at_the_cap(body_limits):
    chunk = b"\0" * 4096
    raw = (b"POST /healthz HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
           + (b"1000\r\n" + chunk + b"\r\n") * 10)
    parser = _parse(body_limits, raw)
    assert isinstance(parser.error, BodyTooLarge)
    assert parser.body_bytes_received == limits.SMALL_BYTES + 1


def test_a_body_under_its_cap_is_read(body_limits):
    parser = _parse(body_limits, b"POST /v1/infer HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello")
    assert parser.completed and parser.error is None
    assert parser.get_body_stream().read() == b"hello"


@pytest.mark.parametrize("head", [
    b"POST /v1/infer HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"POST /v1/infer HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n",
    b"POST /v1/infer HTTP/1.0\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
])
def test_row38_content_length_with_transfer_encoding_is_refused(body_limits, head):
    parser = _parse(body_limits, head + b"0\r\n\r\n")
    assert isinstance(parser.error, AmbiguousLength) and parser.error.code == 400


def test_server_errors_are_the_box_json():
    answer = json.loads(json_error(BodyTooLarge("too big: send less")))
    assert answer == {"error": {"code": "payload_too_large", "message": "too big: send less"}}
    from waitress.utilities import BadRequest, InternalServerError

    bad = json.loads(json_error(BadRequest("Content-Length is invalid")))["error"]
    assert bad["code"] == "bad_request" and "Content-Length is invalid" in bad["message"]
    assert json.loads(json_error(InternalServerError("trace")))["error"]["code"] == "internal"


class _Channel:
    def __init__(self, request):
        self.requests = [request]


def test_health_probes_and_server_errors_take_the_light_lane(body_limits):
    probe = _parse(body_limits, b"GET /readyz HTTP/1.1\r\n\r\n")
    inference = _parse(body_limits, b"POST /v1/infer HTTP/1.1\r\nContent-Length: 1\r\n\r\nx")
    refused = _parse(body_limits, b"POST /healthz HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n")
    assert is_light(_Channel(probe)) and is_light(_Channel(refused))
    assert not is_light(_Channel(inference))
    dispatcher = LaneDispatcher(0, light_threads=1)  # no main workers: only the lane runs
    done = []

    class Task:
        def __init__(self) -> None:
            self.requests = [probe]

        def service(self) -> None:
            done.append(True)

    try:
        dispatcher.add_task(Task())
        deadline = time.monotonic() + 5
        while not done and time.monotonic() < deadline:
            time.sleep(0.01)
        assert done == [True]
    finally:
        dispatcher.shutdown(timeout=1)


def test_max_streams_is_a_documented_setting_with_a_range():
    settings = config.load(env={"APPLIANCE_SERVER_MAX_STREAMS": "3"})
    assert settings.server.max_streams == 3
    with pytest.raises(config.ConfigError, match="server.max_streams"):
        config.load(env={"APPLIANCE_SERVER_MAX_STREAMS": "-1"})


def _receiving_limits(app, identify=None, **overrides):
    settings = config.load(env={}, overrides={"server.max_upload_mb": 1,
                                              "server.max_receiving_mb": 2, **overrides})
    return limits.BodyLimits(app.url_map, settings, identify=identify)


def _upload(size: int, chunked: bool = False, path: bytes = b"/v1/models/x/infer",
            extra: bytes = b"") -> bytes:
    framing = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: %d" % size
    return b"POST %s HTTP/1.1\r\nHost: x\r\n%s%s\r\n\r\n" % (path, extra, framing)


KB = 1024


def test_a_strangers_body_is_counted_as_its_bytes_arrive(app):
    body_limits = _receiving_limits(app)
    parser = _parse(body_limits, _upload(1 << 20) + b"\xff" * (100 * KB))
    assert parser.error is None
    assert body_limits.receiving.held == 100 * KB  # what arrived, not what was declared
    parser.received(b"\xff" * (100 * KB))
    assert body_limits.receiving.held == 200 * KB
    parser.close()


def test_bodies_held_at_once_are_bounded(app):
    from appliance.httpserver import Refused

    body_limits = _receiving_limits(app)
    first, second = (_parse(body_limits, _upload(1 << 20) + b"\xff" * ((1 << 20) - 1), client)
                     for client in ("192.0.2.1", "192.0.2.2"))
    assert first.error is None and second.error is None
    assert body_limits.receiving.held == (2 << 20) - 2
    third = _parse(body_limits, _upload(100 * KB) + b"\xff" * 1000, "192.0.2.3")
    assert isinstance(third.error, Refused) and third.error.code == 503  # at its headers
    assert third.error.error.headers == {"Retry-After": "1"}
    assert third.body_rcv is None  # nothing of it buffered
    assert body_limits.receiving.held == (2 << 20) - 2  # the refused one holds nothing
    first.close()  # a request done: its bytes are back at once, not at garbage collection
    assert body_limits.receiving.held == (1 << 20) - 1
    second.body_rcv.getbuf().close()  # (its file, not the parser: no ResourceWarning)
    del second  # a connection dropped mid-body: the parser is dropped with it
    assert body_limits.receiving.held == 0
    third.close()


def test_a_body_that_fit_at_its_headers_is_stopped_when_it_no_longer_does(app):
    body_limits = _receiving_limits(app)
    both = [_parse(body_limits, _upload(1 << 20) + b"\xff" * KB, client)
            for client in ("192.0.2.1", "192.0.2.2", "192.0.2.3")]
    assert all(p.error is None for p in both)  # 3 MB declared, 3 KB arrived: room for each
    for parser in both[:2]:
        parser.received(b"\xff" * ((1 << 20) - KB - 1))
    both[2].received(b"\xff" * (200 * KB))  # past 2 MB + framing now
    assert both[2].error is not None and both[2].error.code == 503
    assert body_limits.receiving.held <= body_limits.receiving.cap
    for parser in both:
        parser.close()


def test_a_chunked_body_is_counted_as_it_arrives(app):
    body_limits = _receiving_limits(app, **{"server.max_receiving_mb": 1.5})
    chunk = b"%x\r\n%s\r\n" % (256 * KB, b"\xff" * (256 * KB))
    held = _parse(body_limits, _upload(0, chunked=True) + chunk * 3)
    assert held.error is None and body_limits.receiving.held > 3 * 256 * KB
    other = _parse(body_limits, _upload(0, chunked=True) + chunk * 4, "192.0.2.2")
    assert other.error is not None and other.error.code == 503
    assert body_limits.receiving.held <= body_limits.receiving.cap
    held.close(), other.close()


def test_a_body_from_a_client_with_a_token_is_not_counted(app):
    tokens = {"Bearer an-admin-token-of-some-length": "admin",
              "Bearer an-inference-token-of-some-length": "infer"}
    body_limits = _receiving_limits(app, identify=lambda header: tokens.get(header, "none"),
                                    **{"server.max_receiving_mb": 1})
    for header in tokens:
        parser = _parse(body_limits, _upload(1 << 20, extra=b"Authorization: %s\r\n"
                                             % header.encode()) + b"\xff" * (1 << 19))
        assert parser.error is None and body_limits.receiving.held == 0, header
        parser.close()
    stranger = _parse(body_limits, _upload(1 << 20, extra=b"Authorization: Bearer guess\r\n")
                      + b"\xff" * (1 << 19))
    assert body_limits.receiving.held == 1 << 19  # a wrong token is no token
    stranger.close()


def test_one_client_holds_at_most_its_share(app):
    body_limits = _receiving_limits(app, **{"server.max_receiving_mb": 8})  # share: 2 MB
    held = [_parse(body_limits, _upload(1 << 20) + b"\xff" * ((1 << 20) - 1))
            for _ in range(2)]
    over = _parse(body_limits, _upload(100 * KB) + b"\xff" * 1000)
    assert over.error is not None and over.error.code == 429
    assert over.error.error.headers == {"Retry-After": "1"}
    assert "more than one client's share (2 MB" in over.error.error.message
    other = _parse(body_limits, _upload(1 << 20) + b"\xff" * ((1 << 20) - 1), "192.0.2.2")
    assert other.error is None  # another client still has room
    assert body_limits.receiving.held == 3 * ((1 << 20) - 1)
    for parser in (*held, over, other):
        parser.close()
    assert body_limits.receiving.held == 0 and body_limits.receiving._clients == {}


def test_a_body_still_arriving_past_its_timeout_is_late(app):
    body_limits = _receiving_limits(app, **{"server.body_timeout_s": 5})
    parser = _parse(body_limits, _upload(1 << 20) + b"\xff" * KB)
    assert not parser.body_late(parser.body_started + 4.9)
    assert parser.body_late(parser.body_started + 5.1)
    done = _parse(body_limits, _upload(10) + b"\xff" * 10)
    assert done.completed and not done.body_late(done.body_started + 60)
    assert _parse(body_limits, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").body_started is None
    parser.close(), done.close()


def test_each_route_names_the_token_its_headers_need(app):
    from appliance.api import body_limits

    gated = body_limits(app, app.extensions["appliance"].settings)
    for method, path in [("POST", "/v1/models/x/infer"), ("POST", "/v1/infer"),
                         ("POST", "/v2/models/x/infer"), ("POST", "/v1/verify")]:
        assert gated.lookup(method, path).token == limits.INFER, path
        assert gated.lookup(method, path).header == "", path
    doods = gated.lookup("POST", "/doods/detect")
    assert (doods.token, doods.header) == (limits.INFER, "doods-auth-key")
    assert gated.lookup("POST", "/v1/vision/detection").token == ""  # api_key: in the body
    assert gated.lookup("PUT", "/v1/models/x").token == limits.ADMIN
    assert gated.lookup("POST", "/v1/models/x/examples/a").token == limits.ADMIN
    assert gated.lookup("POST", "/healthz").token == ""
    assert gated.lookup("POST", "/v2/models/x/infer").error_body is not None
    assert gated.lookup("POST", "/v1/models/x/infer").error_body is None  # the box's own


def test_a_body_is_given_back_when_the_app_returns_before_its_answer_goes_out(app):
    from appliance.httpserver import GIVE_BACK, ApplianceChannel, ReceivingTask, giving_back

    body_limits = _receiving_limits(app)
    parser = _parse(body_limits, _upload(1000) + b"\xff" * 1000)
    assert parser.completed
    seen = []

    def view(environ, start_response):
        seen.append(body_limits.receiving.held)
        return [b"answer"]

    assert giving_back(view)({GIVE_BACK: parser.give_back}, None) == [b"answer"]
    # A client's next upload, sent as soon as it reads this answer, finds the bytes back.
    assert seen == [1000] and body_limits.receiving.held == 0
    parser.close()  # and again at close: nothing twice
    assert body_limits.receiving.held == 0
    assert ApplianceChannel.task_class is ReceivingTask


class _Server:
    """What ApplianceChannel asks of its server, with each wake-up recorded as whether the
    channel's output lock was free then (asked from another thread, as the loop would)."""

    def __init__(self, body_limits) -> None:
        self.body_limits = body_limits
        self.wakes: list[bool] = []
        self.channel = None
        self.active_channels: dict = {}
        self.tasks = 0

    def add_task(self, channel) -> None:
        self.tasks += 1

    def pull_trigger(self) -> None:
        lock, free = self.channel.outbuf_lock, []

        def ask() -> None:
            free.append(lock.acquire(False))
            if free[0]:
                lock.release()

        asker = threading.Thread(target=ask)
        asker.start()
        asker.join()
        self.wakes.extend(free)


@contextlib.contextmanager
def _channel(body_limits):
    """An ApplianceChannel on one end of a socket pair (a small send buffer), its `_Server`,
    and the other end; both closed after."""
    from appliance.httpserver import ApplianceChannel

    ours, theirs = socket.socketpair()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    server = _Server(body_limits)
    server.channel = ApplianceChannel(server, ours, ("192.0.2.1", 1), Adjustments(), map={})
    try:
        yield server.channel, server, theirs
    finally:
        server.channel.total_outbufs_len = 0  # a test's made-up count: nothing to flush
        server.channel.handle_close()
        theirs.close()


def test_the_loop_does_not_watch_a_socket_while_a_task_writes_to_it(body_limits):
    with _channel(body_limits) as (channel, _, _):
        channel.requests = [object()]  # a task is running
        channel.total_outbufs_len = 100
        holder_has_it, done = threading.Event(), threading.Event()

        def task_writing() -> None:
            with channel.outbuf_lock:
                holder_has_it.set()
                done.wait(5)

        writer = threading.Thread(target=task_writing)
        writer.start()
        assert holder_has_it.wait(5)
        assert not channel.writable()  # the task flushes this itself: no pass spins on it
        channel.total_outbufs_len = channel.adj.outbuf_high_watermark + 1
        assert channel.writable()  # past the mark the task waits for the loop to send
        channel.total_outbufs_len = 100
        done.set()
        writer.join()
        assert channel.writable()  # left over once the task let go: the loop sends it
        channel.requests = []
        assert channel.writable()
        channel.total_outbufs_len = 0
        assert not channel.writable()
        channel.close_when_flushed = True
        assert channel.writable()


def test_output_the_socket_did_not_take_wakes_the_loop_after_the_lock_is_let_go(body_limits):
    with _channel(body_limits) as (channel, server, _):
        channel.requests = [object()]
        channel.write_soon(b"x" * (2 << 20))  # far more than the socket takes at once
        assert channel.total_outbufs_len > 0
        # waitress wakes the loop with the lock held (writable then says no); one more
        # wake-up once it is free makes the loop watch the socket for the rest.
        assert server.wakes and server.wakes[-1] is True


def test_a_body_is_read_in_large_pieces_but_never_past_its_end(body_limits):
    with _channel(body_limits) as (channel, _, theirs):
        size = BODY_READ + 20_000
        theirs.sendall(b"POST /v1/models/x/infer HTTP/1.1\r\nContent-Type: image/jpeg\r\n"
                       b"Content-Length: %d\r\n\r\n" % size)
        channel.handle_read()  # the headers, at waitress's 8 KB
        body = channel.request.body_rcv
        theirs.sendall(b"\xff" * size + b"GET /healthz HTTP/1.1\r\n\r\n" * 100)
        time.sleep(0.05)
        channel.handle_read()
        assert size - body.remain == BODY_READ  # one read took 64 KB of the body
        channel.handle_read()  # the rest, 20 KB, and not a byte more
        # The last read ended with the body: the pipelined requests behind it are unread.
        assert len(channel.requests) == 1 and channel.request is None


def test_row46_pipelined_requests_are_read_8_kb_at_a_time(body_limits):
    with _channel(body_limits) as (channel, _, theirs):
        get = b"GET /openapi.json HTTP/1.1\r\n\r\n"
        theirs.sendall(get * 2048)  # 60 KB
        time.sleep(0.05)
        channel.handle_read()
        # 2048 answers of 62 KB would pass waitress's 16 MB output mark, and the task would
        # wait there for as long as the client does not read.
        assert len(channel.requests) <= 8192 // len(get)


def test_row46_a_client_that_never_reads_its_answers_does_not_hold_a_worker(body_limits):
    from appliance.httpserver import create_server

    def big(environ, start_response):  # written in pieces: one waits at the output mark
        start_response("200 OK", [("Content-Length", str(64 * 300_000))])
        return [b"x" * 300_000] * 64

    server = create_server(big, body_limits, threads=1, host="127.0.0.1", port=0,
                           outbuf_high_watermark=65536, channel_timeout=1, cleanup_interval=1)
    loop = threading.Thread(target=server.run, daemon=True)
    loop.start()
    port = server.socket.getsockname()[1]
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        stalled.connect(("127.0.0.1", port))
        stalled.sendall(b"GET /a HTTP/1.1\r\n\r\n")  # never read: the one worker waits
        time.sleep(0.5)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as other:
            other.sendall(b"GET /b HTTP/1.1\r\nConnection: close\r\n\r\n")
            # The stalled connection is closed after the channel timeout, freeing the worker.
            assert other.recv(12) == b"HTTP/1.1 200"
    finally:
        stalled.close()
        server.close()
        server.task_dispatcher.shutdown(timeout=2)
