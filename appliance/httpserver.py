"""waitress, hardened for a box on a shared network: what the HTTP layer refuses before the
Flask app sees a request.

- Each route's body cap (appliance.api.limits) is checked from the headers: a declared
  Content-Length over it is refused before one byte of the body is read, a chunked body is
  stopped at it. waitress alone caps every route at the largest cap and spools the body to a
  temporary file before the app can say 405. A bundle upload without the admin token, and
  an upload to an admitted route without the inference token where one is set (in
  `Authorization`, or the header the route's protocol uses), are refused (401/403) from
  their headers too, in the route's protocol's error JSON. (DeepStack's `api_key` travels
  in the body: those routes are judged by the app, after the rate limit.)
- Bodies held at once from clients without a token in their headers are bounded, counted
  as their bytes arrive (server.max_receiving_mb), one client address at most a quarter of
  it: past either an upload is a 503 (429 for the one client) with Retry-After, from its
  headers when there is no room then. A body must arrive within server.body_timeout_s of its
  headers. So a crowd cannot fill memory or the disk with uploads the app has not yet seen,
  cannot hold the budget by trickling bytes, and cannot starve clients that hold a token.
- `Content-Length` together with `Transfer-Encoding` (request smuggling behind a proxy) is a
  400 and the connection is closed.
- Every error the server itself makes is the box's JSON, `{"error": {"code", "message"}}`,
  with `Connection: close`; after it the connection lingers briefly, discarding what the
  client still sends, so that the client reads the answer instead of a reset.
- `/healthz`, `/readyz` and the server's own errors run on a lane of their own, so they are
  answered while every worker is busy (long inference, live event streams).
- At the connection limit an idle connection is closed to admit a new one, instead of the
  listening socket going deaf until idle connections time out.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import time
import weakref
from functools import partial
from http import HTTPStatus

from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.receiver import FixedStreamReceiver
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask, ThreadedTaskDispatcher, WSGITask
from waitress.utilities import BadRequest, Error, RequestEntityTooLarge

from appliance.api.limits import ADMIN, INFER, BodyLimits, Limit, Receiving
from appliance.dispatch import HotThreadDispatcher
from appliance.errors import ApplianceError, PayloadTooLarge

log = logging.getLogger(__name__)
LIGHT_PATHS = frozenset({"/healthz", "/readyz"})
LIGHT_THREADS = 2
ACCEPT_BATCH = 64
# A request body of known length is read up to this much a call, never past its end. Each
# read is a pass of the loop over every connection: a 75 KB photo took 10 passes at waitress's
# 8 KB. Reads past a body, or of headers, stay at 8 KB: one 64 KB read of pipelined 30-byte
# GETs queued 2048 requests at once, whose answers passed waitress's 16 MB output mark and
# held a worker for as long as the client did not read.
BODY_READ = 64 << 10
GIVE_BACK = "appliance.give_back"  # the environ key of a request's ReceivingTask.give_back
LINGER_S = 2.0               # longest a refused client is read (and discarded) after the answer
LINGER_BYTES = 64 << 20      # ... and at most this much of it
SMUGGLING = ("a request may not carry both Content-Length and Transfer-Encoding: send one of "
             "them (this is how requests are smuggled past proxies)")
CODES = {400: "bad_request", 413: "payload_too_large", 431: "header_too_large",
         500: "internal", 501: "not_implemented"}


class BodyTooLarge(RequestEntityTooLarge):
    """A body over its route's cap, refused by the server before the app runs."""


class AmbiguousLength(BadRequest):
    """Content-Length and Transfer-Encoding together: the body's end is ambiguous."""


class Refused(Error):
    """A domain error (appliance.errors) raised from the headers, e.g. no admin token on an
    upload: answered with its own status, message and headers, in the box's error JSON or
    in `shape`, the route's protocol's."""

    def __init__(self, error: ApplianceError, shape=None) -> None:
        super().__init__(error.message)
        self.code, self.reason = error.status, HTTPStatus(error.status).phrase
        self.error, self.shape = error, shape


class LimitedParser(HTTPRequestParser):
    """waitress's request parser with per-route body caps and no CL+TE ambiguity."""

    refusal = None
    limit: Limit | None = None
    route = ""  # the path as the app sees it, once the headers are read
    counted = False  # a stranger's body: counted in the receiving budget as it arrives
    body_started: float | None = None  # when a body's headers were read
    _give_back: weakref.finalize | None = None

    def __init__(self, adj: Adjustments, limits: BodyLimits, client: str = "") -> None:
        super().__init__(adj)
        self.limits = limits
        self.client = client  # the peer's address: its share of the receiving budget
        self._held = [0]  # bytes of the budget this body holds (a list: the finalizer's)

    def parse_header(self, header_plus: bytes) -> None:
        """Parse the headers, then refuse CL+TE (a 400) and look up the route's cap; a
        declared length over it is refused (a 413). Either way nothing of the body is read.
        Raises waitress's ParsingError for headers that are not HTTP."""
        super().parse_header(header_plus)
        if "CONTENT_LENGTH" in self.headers and (self.chunked
                                                 or "TRANSFER_ENCODING" in self.headers):
            self._stop(AmbiguousLength(SMUGGLING))
            return
        self.route = "/" + self.path.lstrip("/")  # as waitress hands PATH_INFO to the app
        self.limit = self.limits.lookup(self.command, self.route)
        if self.content_length > self.limit.bytes:
            self._too_large(self.limit.message(self.content_length))
        elif self.content_length or self.chunked:
            try:
                authorization = self._check_token()
            except ApplianceError as exc:
                self._stop(Refused(exc, self.limit.error_body))
                return
            self.body_started = time.monotonic()
            # A client with a token (the admin's bundle uploads among them) is not counted
            # against the strangers' budget; a stranger's body is, as its bytes arrive.
            self.counted = self.limits.identify(authorization) == "none"
            refusal = self.limits.receiving.room(self.content_length, self.client) \
                if self.counted else None
            if refusal is not None:  # no room now: refused before a byte is read
                self._stop(Refused(refusal, self.limit.error_body))

    def _check_token(self) -> str | None:
        """The token the route needs before its body is read (Limit.token), from the
        headers; returns the Authorization it was found in (or that the route's protocol's
        header makes). Raises the ApplianceError (401, 403) of Auth."""
        authorization = self.headers.get("AUTHORIZATION")
        if authorization is None and self.limit.header:
            token = self.headers.get(self.limit.header.upper().replace("-", "_"))
            authorization = f"Bearer {token}" if token else None
        if self.limit.token == ADMIN:
            self.limits.admin(authorization)
        elif self.limit.token == INFER:
            self.limits.infer(authorization, self.limit.how)
        return authorization

    def body_late(self, now: float) -> bool:
        """Whether this request's body is still arriving server.body_timeout_s after its
        headers (its connection is then closed: a stranger cannot hold the receiving budget
        by trickling bytes)."""
        return (self.body_started is not None and not self.completed
                and now - self.body_started > self.limits.body_timeout_s)

    def received(self, data: bytes) -> int:
        """waitress's `received`, stopping a chunked body at the route's cap (one byte past
        it is all that is ever taken in)."""
        if self.chunked and self.body_rcv is not None and self.refusal is None:
            data = data[:max(self.limit.bytes + 1 - self.body_bytes_received, 1)]
        consumed = super().received(data)
        if (self.refusal is None and self.chunked and self.limit is not None
                and self.body_bytes_received > self.limit.bytes):
            self._too_large(self.limit.message(None))
        elif self.refusal is None and self.counted:
            self._hold(self.body_bytes_received - self._held[0])
        if self.refusal is not None:
            self.error, self.completed = self.refusal, True
        return consumed

    def close(self) -> None:
        """waitress's close of a finished request, giving back the bytes its body held."""
        super().close()
        self.give_back()

    def give_back(self) -> None:
        """Give back the bytes this body holds in the receiving budget (once; later calls do
        nothing): when the app is done with it, before the answer goes out, so that a
        client's next upload never meets its last one still counted."""
        if self._give_back is not None:
            self._give_back()

    def _hold(self, size: int) -> None:
        """Count `size` more bytes of this body against the server's receiving budget, or
        refuse the request (503, 429 past the client's share) when it is spent. What is held
        is given back when the app is done, at close, or when the connection is dropped."""
        if size <= 0:
            return
        receiving = self.limits.receiving
        refusal = receiving.take(size, self.client)
        if refusal is not None:
            self._stop(Refused(refusal, self.limit.error_body))
            return
        self._held[0] += size
        if self._give_back is None:
            self._give_back = weakref.finalize(self, _give, receiving, self._held, self.client)

    def _too_large(self, message: str) -> None:
        """Refuse a body over the route's cap: 413, in the route's protocol's JSON."""
        shape = self.limit.error_body
        self._stop(Refused(PayloadTooLarge(message), shape) if shape else BodyTooLarge(message))

    def _stop(self, refusal) -> None:
        self.refusal = refusal
        if isinstance(refusal, Refused | BodyTooLarge):  # counted as the app counts its own
            self.limits.refused(self.command, self.route, refusal.code)
        self.expect_continue = False  # never invite the client to send what is refused
        if not self.chunked or self.body_bytes_received == 0:
            self.body_rcv = None  # no body receiver: nothing of it is ever buffered


def _give(receiving: Receiving, held: list[int], client: str) -> None:
    receiving.give(held[0], client)
    held[0] = 0


class ReceivingTask(WSGITask):
    """waitress's WSGI task with the request's `give_back` in the environment (GIVE_BACK),
    which `giving_back` calls once the app has returned."""

    def get_environment(self) -> dict:
        environ = super().get_environment()
        environ[GIVE_BACK] = self.request.give_back
        return environ


def giving_back(app):
    """`app`, giving back its request body's share of the receiving budget as soon as the
    app has returned its answer (it has read the body by then, or never will)."""
    def wsgi(environ, start_response):
        try:
            return app(environ, start_response)
        finally:
            give_back = environ.get(GIVE_BACK)
            if give_back is not None:
                give_back()

    return wsgi


class JsonErrorTask(ErrorTask):
    """The server's own error answers (400, 413, 431, 500, 501) as the box's JSON, with
    `Connection: close`; the channel then lingers so the client reads the answer."""

    def execute(self) -> None:
        error = self.request.error
        self.status = f"{error.code} {error.reason}"
        body = json_error(error)
        self.response_headers.extend([("Content-Type", "application/json"),
                                      ("Content-Length", str(len(body)))])
        if isinstance(error, Refused):
            self.response_headers.extend(error.error.headers.items())
        self.set_close_on_finish()
        self.content_length = len(body)
        self.channel.linger = True
        self.write(body)


def json_error(error) -> bytes:
    """The JSON body for a waitress error: the box's code and a message saying what to do."""
    if isinstance(error, Refused):
        body = error.shape(error.error) if error.shape else \
            {"error": {"code": error.error.code, "message": error.error.message}}
        return json.dumps(body).encode()
    message = error.body if isinstance(error, (BodyTooLarge, AmbiguousLength)) \
        else _explain(error)
    code = CODES.get(error.code, "bad_request" if error.code < 500 else "internal")
    return json.dumps({"error": {"code": code, "message": message}}).encode()


def _explain(error) -> str:
    if error.code == 500:
        return ("the box hit an unexpected error; it is logged: retry, and report it if it "
                "happens again")
    if error.code == 413:  # waitress's own backstop cap
        return f"the request body is larger than this box accepts ({error.body})"
    return f"the request is not valid HTTP ({error.body}): fix the client"


class ApplianceChannel(HTTPChannel):
    """waitress's connection with `LimitedParser`, `JsonErrorTask` and a lingering close
    after an error."""

    task_class = ReceivingTask
    error_task_class = JsonErrorTask
    linger = False
    linger_until = 0.0
    drained = 0

    def __init__(self, server, sock, addr, adj, map=None) -> None:
        self.parser_class = partial(LimitedParser, limits=server.body_limits,
                                    client=str(addr[0]) if addr else "")
        super().__init__(server, sock, addr, adj, map=map)

    def handle_close(self) -> None:
        """Close; after an error answer, first stop sending and read the rest for a moment
        (closing with unread data sends a reset, which can destroy the answer in flight)."""
        if self.linger and not self.linger_until and self.socket is not None:
            try:
                self.socket.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            else:
                self.linger_until = time.monotonic() + LINGER_S
                self.will_close = self.close_when_flushed = False
                return
        self.linger = False
        if self.socket is not None:
            self._drop_unfinished()
            super().handle_close()

    def _drop_unfinished(self) -> None:
        """Give back what a request still arriving held: waitress keeps the channel (and so
        its parser) alive in an idle worker's last task, past its close."""
        if isinstance(self.request, LimitedParser):
            self.request.give_back()

    def readable(self) -> bool:
        return bool(self.linger_until) or super().readable()

    def writable(self) -> bool:
        """waitress's `writable`, less the passes where handle_write can do nothing: while
        a task holds the output lock it is writing, and it flushes its own output (waitress
        sends from the task's thread). Watching the socket then made the loop spin, each
        pass over every connection taking the GIL from the task (16 such passes a request
        at 16 in flight)."""
        if self.linger_until:  # wakes handle_write to close once the time is up
            return time.monotonic() >= self.linger_until
        if self.will_close or self.close_when_flushed:
            return True
        if not self.total_outbufs_len:
            return False
        # Past the output mark the task waits for the loop to send (it woke the loop with the
        # lock still held, and may not yet have let go of it).
        return (not self.requests or self.total_outbufs_len > self.adj.outbuf_high_watermark
                or self._output_unlocked())

    def _output_unlocked(self) -> bool:
        if not self.outbuf_lock.acquire(False):
            return False
        self.outbuf_lock.release()
        return True

    def write_soon(self, data) -> int:
        """waitress's `write_soon`, waking the loop once more when the socket did not take
        all of `data`: waitress wakes it with the output lock still held, when `writable`
        does not yet watch the socket."""
        written = super().write_soon(data)
        if self.total_outbufs_len:
            self.server.pull_trigger()
        return written

    def recv(self, buffer_size: int) -> bytes:
        """waitress's `recv`, reading more at once within a body of known length (BODY_READ),
        never past its end."""
        body = getattr(self.request, "body_rcv", None)
        if isinstance(body, FixedStreamReceiver) and body.remain > buffer_size \
                and not self.linger_until:
            buffer_size = min(BODY_READ, body.remain)
        return super().recv(buffer_size)

    def handle_read(self) -> None:
        if not self.linger_until:
            return super().handle_read()
        data = self.recv(self.adj.recv_bytes * 8)  # discarded: never buffered, never spooled
        self.drained += len(data)
        if (not data or self.drained > LINGER_BYTES) and self.socket is not None:
            self._close_now()

    def handle_write(self) -> None:
        if not self.linger_until:
            return super().handle_write()
        self._close_now()

    def _close_now(self) -> None:
        self.linger = False
        self.linger_until = 0.0
        if self.socket is not None:
            self._drop_unfinished()
            super().handle_close()


class ApplianceServer(TcpWSGIServer):
    """waitress's TCP server with `ApplianceChannel`; at the connection limit it closes the
    connection idle the longest (no request in work, nothing left to send) to admit the new
    one, so `/healthz` still gets in past a crowd of idle or slow connections."""

    channel_class = ApplianceChannel
    evicting = False

    def __init__(self, application, body_limits: BodyLimits, **kw) -> None:
        self.body_limits = body_limits
        super().__init__(application, **kw)

    def maintenance(self, now: float) -> None:
        """waitress's closing of idle connections, of those whose request body is still
        arriving server.body_timeout_s after its headers, and of those whose client has not
        taken a byte of its answers for waitress's channel timeout while they are past the
        output mark: their task waits there, holding a worker, until the loop can send
        (waitress's own check spares a connection with a request in work)."""
        super().maintenance(now)
        late, stalled = time.monotonic(), now - self.adj.channel_timeout
        for channel in self.active_channels.values():
            request = channel.request
            if isinstance(request, LimitedParser) and request.body_late(late):
                channel.will_close = True
            if channel.total_outbufs_len > self.adj.outbuf_high_watermark \
                    and channel.last_activity < stalled and channel.socket is not None:
                # A full socket never turns writable, so the loop would not come to close
                # it: shut down, the next send fails and the loop closes it as any broken
                # connection, waking the task.
                channel.will_close = True
                with contextlib.suppress(OSError):
                    channel.socket.shutdown(socket.SHUT_RDWR)

    def readable(self) -> bool:
        now = time.time()
        if now >= self.next_channel_cleanup:
            self.next_channel_cleanup = now + self.adj.cleanup_interval
            self.maintenance(now)
        return self.accepting

    def handle_accept(self) -> None:
        # Several per wake-up: each loop pass walks every connection, so accepting one per
        # pass leaves a probe behind a crowd waiting for seconds.
        for _ in range(ACCEPT_BATCH):
            before = len(self.active_channels)
            super().handle_accept()
            if len(self.active_channels) == before:
                return  # nothing more to accept
            if len(self.active_channels) > self.adj.connection_limit:
                self._evict()
            elif self.evicting and len(self.active_channels) < self.adj.connection_limit:
                self.evicting = False

    def _evict(self) -> None:
        channels = list(self.active_channels.values())
        idle = [c for c in channels if c.linger_until or not (c.requests or c.total_outbufs_len)]
        # None idle: every connection has work in progress; the newest gives way.
        victim = (min(idle, key=lambda c: (not c.linger_until, c.last_activity)) if idle
                  else max(channels, key=lambda c: c.creation_time))
        if not self.evicting:  # once per crowd, not once per connection
            log.warning("%d connections open, the limit: closing the longest idle ones to "
                        "admit new ones", self.adj.connection_limit)
            self.evicting = True
        victim.linger = False
        victim.handle_close()


class LaneDispatcher(HotThreadDispatcher):
    """The worker threads, plus a lane of `LIGHT_THREADS` for health probes and the server's
    own error answers: these never wait behind inference or long-lived streams."""

    def __init__(self, threads: int, light_threads: int = LIGHT_THREADS) -> None:
        super().__init__(threads)
        self.light = ThreadedTaskDispatcher()
        self.light.set_thread_count(light_threads)

    def add_task(self, task) -> None:
        if is_light(task):
            self.light.add_task(task)
        else:
            super().add_task(task)

    def shutdown(self, cancel_pending: bool = True, timeout: float = 5) -> bool:
        self.light.shutdown(cancel_pending, timeout)
        return super().shutdown(cancel_pending, timeout)


def is_light(task) -> bool:
    """Whether `task` (a channel about to serve its first queued request) is a health probe
    or an error the server answers by itself. waitress calls `add_task` with the channel's
    requests lock held, so reading `requests[0]` is safe."""
    requests = getattr(task, "requests", None)
    if not requests:
        return False
    request = requests[0]
    if request.error is not None:
        return True
    return getattr(request, "command", "") in ("GET", "HEAD") and request.path in LIGHT_PATHS


def create_server(app, body_limits: BodyLimits, threads: int, **options) -> ApplianceServer:
    """The hardened server on one listening address (`options` are waitress adjustments).
    Raises OSError when the address cannot be bound."""
    adj = Adjustments(threads=threads, **options)
    dispatcher = LaneDispatcher(threads)
    try:
        return ApplianceServer(giving_back(app), body_limits, map={}, dispatcher=dispatcher,
                               adj=adj, sockinfo=adj.listen[0])
    except BaseException:
        dispatcher.shutdown(timeout=1)
        raise
