"""A lean closed-loop HTTP/1.1 load generator for the benchmark, and a peak-memory sampler.

One thread drives every connection with non-blocking sockets and pre-built request bytes, so
the client costs the shared CPU as little as a Python client can, and the same for every
server measured. Loopback only: the host is fixed to 127.0.0.1.
"""

from __future__ import annotations

import selectors
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"


def build_request(path: str, body: bytes, content_type: str) -> bytes:
    """The whole request as bytes, keep-alive."""
    head = (f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n")
    return head.encode() + body


def multipart(field_name: str, data: bytes, filename: str = "photo.jpg") -> tuple[bytes, str]:
    """`data` as one multipart file field, the way `curl -F field=@photo.jpg` sends it;
    returns the body and its Content-Type."""
    boundary = uuid.uuid4().hex
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field_name}\"; "
            f"filename=\"{filename}\"\r\nContent-Type: image/jpeg\r\n\r\n").encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), \
        f"multipart/form-data; boundary={boundary}"


@dataclass
class Response:
    status: int
    body: bytes
    close: bool


def parse_response(buffer: bytes | bytearray, eof: bool = False) -> tuple[Response, int] | None:
    """One complete response at the start of `buffer` and its length, or None if incomplete.

    Handles Content-Length, chunked bodies and bodies ended by the server closing. Raises
    ValueError for something that is not HTTP.
    """
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = bytes(buffer[:end]).decode("latin-1").split("\r\n")
    version, status = lines[0].split(" ", 2)[:2]
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    close = headers.get("connection", "").lower() == "close" or (version == "HTTP/1.0" and \
        headers.get("connection", "").lower() != "keep-alive")
    start = end + 4
    if "content-length" in headers:
        stop = start + int(headers["content-length"])
        if len(buffer) < stop:
            return None
        return Response(int(status), bytes(buffer[start:stop]), close), stop
    if headers.get("transfer-encoding", "").lower() == "chunked":
        return _chunked(buffer, start, int(status), close)
    if not eof:
        return None
    return Response(int(status), bytes(buffer[start:]), True), len(buffer)


def _chunked(buffer, start: int, status: int, close: bool) -> tuple[Response, int] | None:
    body = bytearray()
    at = start
    while True:
        line_end = buffer.find(b"\r\n", at)
        if line_end < 0:
            return None
        size = int(bytes(buffer[at:line_end]).split(b";")[0], 16)
        if len(buffer) < line_end + 2 + size + 2:
            return None
        body += buffer[line_end + 2:line_end + 2 + size]
        at = line_end + 2 + size + 2
        if size == 0:
            return Response(status, bytes(body), close), at


@dataclass
class _Conn:
    sock: socket.socket | None = None
    buffer: bytearray = field(default_factory=bytearray)
    pending: memoryview | None = None
    started: float = 0.0


@dataclass
class LoadResult:
    """What one closed-loop run measured (times in milliseconds)."""

    latencies_ms: list[float]
    statuses: dict[int, int]
    seconds: float
    errors: int
    first_body: bytes

    @property
    def ok(self) -> int:
        return self.statuses.get(200, 0)

    def summary(self) -> dict:
        return {"requests": len(self.latencies_ms), "ok": self.ok,
                "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
                "errors": self.errors, **percentiles(self.latencies_ms),
                "throughput_rps": self.ok / self.seconds}


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50, p95 and p99 of `samples` (NaN for none), as p50_ms, p95_ms, p99_ms."""
    ordered = sorted(samples) or [float("nan")]
    return {f"p{q}_ms": ordered[min(len(ordered) - 1, q * len(ordered) // 100)]
            for q in (50, 95, 99)}


def closed_loop(port: int, request: bytes, concurrency: int, seconds: float,
                warmup_s: float = 1.0, max_requests: int = 1_000_000) -> LoadResult:
    """Keep `concurrency` requests in flight for `warmup_s` + `seconds`; measure the latter.

    Each connection sends its next request as soon as its previous answer is complete.
    """
    selector = selectors.DefaultSelector()
    conns = [_Conn() for _ in range(concurrency)]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0
    first_body = b""
    began = time.perf_counter()
    measure_from = began + warmup_s
    stop_at = measure_from + seconds
    for conn in conns:
        _send(selector, conn, port, request)
    in_flight = concurrency
    while in_flight:
        for key, _ in selector.select(timeout=60):
            conn = key.data
            outcome = _advance(selector, conn)
            if outcome is None:
                continue
            now = time.perf_counter()
            if isinstance(outcome, Response):
                if not first_body and outcome.status == 200:
                    first_body = outcome.body
                if now >= measure_from and conn.started >= measure_from:
                    latencies.append((now - conn.started) * 1000)
                    statuses[outcome.status] = statuses.get(outcome.status, 0) + 1
            else:
                errors += 1
            if now < stop_at and len(latencies) < max_requests:
                _send(selector, conn, port, request)
            else:
                _close(selector, conn)
                in_flight -= 1
        if time.perf_counter() > stop_at + 120:
            break  # a server that stopped answering: give up rather than hang
    for conn in conns:
        _close(selector, conn)
    selector.close()
    measured = min(time.perf_counter(), stop_at) - measure_from
    return LoadResult(latencies, statuses, max(measured, 1e-9), errors, first_body)


def _send(selector, conn: _Conn, port: int, request: bytes) -> None:
    if conn.sock is None:
        conn.sock = socket.create_connection((HOST, port))
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.sock.setblocking(False)
        selector.register(conn.sock, selectors.EVENT_WRITE, conn)
    else:
        selector.modify(conn.sock, selectors.EVENT_WRITE, conn)
    conn.pending = memoryview(request)
    conn.buffer.clear()
    conn.started = time.perf_counter()


def _advance(selector, conn: _Conn) -> Response | Exception | None:
    """Move one connection forward: send what is left or read; a finished response or error."""
    try:
        if conn.pending is not None:
            sent = conn.sock.send(conn.pending)
            conn.pending = conn.pending[sent:] if sent < len(conn.pending) else None
            if conn.pending is None:
                selector.modify(conn.sock, selectors.EVENT_READ, conn)
            return None
        chunk = conn.sock.recv(262144)
        conn.buffer += chunk
        parsed = parse_response(conn.buffer, eof=not chunk)
        if parsed is None:
            if not chunk:
                raise ConnectionError("server closed the connection mid-response")
            return None
    except (OSError, ValueError) as exc:
        _close(selector, conn)
        return exc
    response, _ = parsed
    if response.close:
        _close(selector, conn)
    return response


def _close(selector, conn: _Conn) -> None:
    if conn.sock is not None:
        selector.unregister(conn.sock)
        conn.sock.close()
        conn.sock = None


class PeakMemory:
    """Samples the resident memory of a process and all its descendants, keeping the peak.

    Linux only (reads /proc); use as a context manager around the load.
    """

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_mb = tree_rss_mb(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak_mb = max(self.peak_mb, tree_rss_mb(self.pid))


def process_rss_mb(pid: int) -> float:
    """Resident memory of one process in MB (Linux). Raises OSError when it is gone."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0  # a zombie has no VmRSS line


def tree_rss_mb(pid: int) -> float:
    """Resident memory of `pid` and its descendants, in MB (0 for a process that is gone)."""
    total = 0.0
    for one in descendants(pid):
        try:
            total += process_rss_mb(one)
        except OSError:
            continue
    return total


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it."""
    found, todo = [], [pid]
    while todo:
        one = todo.pop()
        found.append(one)
        for task in Path(f"/proc/{one}/task").glob("*") if Path(f"/proc/{one}").exists() else []:
            try:
                todo += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
    return found
