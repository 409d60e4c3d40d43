"""A bounded ZMTP 3 server for REQ peers (ZeroMQ's wire protocol, NULL security), in the
standard library: what Frigate's zmq detector connects to.

libzmq itself cannot bound a message: it caps each frame (ZMQ_MAXMSGSIZE), but keeps every
frame of a multipart message until its last one arrives, so one peer sending frames with
MORE set and never a last one grew a box by 380 MB a second (an attack run found it), and a
thousand idle connections, refused or not, held every file descriptor the HTTP server
needed. Here each message is read within `max_bytes` in all and `max_frames` frames (a peer
past either is disconnected at once), a peer's address is checked before a byte is read,
there are at most `max_peers` connections, and a peer has `handshake_s` to greet and
`idle_s` between requests.

Wire format (rfc.zeromq.org/spec/23): a 64-byte greeting each way; a READY command with the
Socket-Type property; then frames of one flags byte (MORE 1, LONG 2, COMMAND 4), a length of
one byte (or eight, big-endian, with LONG) and the body. A REQ peer's request is an empty
delimiter frame then its frames; the reply is the same.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)
SIGNATURE = b"\xff" + b"\x00" * 8 + b"\x7f"
GREETING = SIGNATURE + b"\x03\x00" + b"NULL".ljust(20, b"\x00") + b"\x00" + b"\x00" * 31
MORE, LONG, COMMAND = 0x01, 0x02, 0x04
PEER_TYPES = (b"REQ", b"DEALER")
MAX_COMMAND = 4096


class PeerError(Exception):
    """The peer broke the protocol or a bound: its connection is closed."""


@dataclass(frozen=True)
class Limits:
    """What one peer may send and hold."""

    max_bytes: int  # a whole request, every frame together
    max_frames: int = 4
    max_peers: int = 16
    handshake_s: float = 2.0
    idle_s: float = 120.0


Handler = Callable[[list[bytes]], list[bytes]]


class Server:
    """Accepts REQ peers on a TCP address and answers each request with `handler` (one
    request at a time over all peers: the model is one)."""

    def __init__(self, host: str, port: int, handler: Handler, limits: Limits,
                 allow: tuple[str, ...] = ()) -> None:
        self.handler = handler
        self.limits = limits
        self.allow = {ipaddress.ip_address(a) for a in allow}
        self._listener = socket.create_server((host, port), reuse_port=False)
        self._listener.settimeout(0.2)
        self.address = self._listener.getsockname()[:2]
        self._slots = threading.BoundedSemaphore(limits.max_peers)
        self._turn = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="zmtp-accept", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        """Stop accepting; connections in progress end at their next read."""
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, peer = self._listener.accept()
            except TimeoutError:
                continue
            except OSError as exc:  # out of descriptors: wait, do not spin
                log.warning("zmq detector: cannot accept (%s)", exc)
                self._stop.wait(1.0)
                continue
            if not self._allowed(peer[0]) or not self._slots.acquire(blocking=False):
                conn.close()  # refused before a byte is read
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True,
                             name="zmtp-peer").start()

    def _allowed(self, address: str) -> bool:
        if not self.allow:
            return True
        try:
            found = ipaddress.ip_address(address)
        except ValueError:
            return False
        mapped = getattr(found, "ipv4_mapped", None)
        return found in self.allow or (mapped is not None and mapped in self.allow)

    def _serve(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(self.limits.handshake_s)
            handshake(conn)
            while not self._stop.is_set():
                conn.settimeout(self.limits.idle_s)
                request = read_request(conn, self.limits)
                with self._turn:
                    reply = self.handler(request)
                conn.settimeout(self.limits.handshake_s)
                send_message(conn, [b"", *reply])
        except (PeerError, OSError, TimeoutError) as exc:
            log.debug("zmq detector: a peer left or was dropped (%s)", exc)
        finally:
            conn.close()
            self._slots.release()


def handshake(conn: socket.socket) -> None:
    """Greet, check the peer's greeting (ZMTP 3, NULL) and exchange READY (we are REP).
    Raises PeerError."""
    conn.sendall(GREETING)
    greeting = _exactly(conn, 64)
    if greeting[:1] != b"\xff" or greeting[9:10] != b"\x7f" or greeting[10] < 3:
        raise PeerError("not a ZMTP 3 peer")
    if greeting[12:32].rstrip(b"\x00") != b"NULL":
        raise PeerError("only the NULL mechanism is spoken here")
    conn.sendall(_command(b"READY", {b"Socket-Type": b"REP"}))
    flags, body = _frame(conn, MAX_COMMAND)
    if not flags & COMMAND or not body.startswith(b"\x05READY"):
        raise PeerError("the peer did not say READY")
    kind = _properties(body[6:]).get(b"socket-type")
    if kind not in PEER_TYPES:
        raise PeerError(f"a {kind!r} peer cannot talk to REP")


def read_request(conn: socket.socket, limits: Limits) -> list[bytes]:
    """One request's frames after its empty delimiter, within the limits; commands (PING)
    between requests are skipped. Raises PeerError past a bound."""
    frames: list[bytes] = []
    total = 0
    while True:
        flags, body = _frame(conn, limits.max_bytes - total)
        if flags & COMMAND:
            if frames:
                raise PeerError("a command inside a message")
            continue
        total += len(body)
        frames.append(body)
        if len(frames) > limits.max_frames + 1:
            raise PeerError(f"more than {limits.max_frames} frames in one request")
        if not flags & MORE:
            break
    if frames[0] != b"":
        raise PeerError("a request without the REQ delimiter")
    return frames[1:]


def send_message(conn: socket.socket, frames: list[bytes]) -> None:
    """Send `frames` as one message."""
    out = bytearray()
    for index, body in enumerate(frames):
        flags = MORE if index < len(frames) - 1 else 0
        if len(body) > 255:
            out += struct.pack(">BQ", flags | LONG, len(body))
        else:
            out += struct.pack(">BB", flags, len(body))
        out += body
    conn.sendall(out)


def _frame(conn: socket.socket, room: int) -> tuple[int, bytes]:
    head = _exactly(conn, 2)
    flags = head[0]
    if flags & ~(MORE | LONG | COMMAND):
        raise PeerError(f"bad frame flags {flags:#x}")
    size = struct.unpack(">Q", head[1:] + _exactly(conn, 7))[0] if flags & LONG else head[1]
    if size > max(room, 0):
        raise PeerError(f"a frame of {size} bytes is over what this request may still send")
    return flags, _exactly(conn, size)


def _exactly(conn: socket.socket, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = conn.recv(min(left, 1 << 20))
        if not chunk:
            raise PeerError("the peer closed the connection")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _command(name: bytes, properties: dict[bytes, bytes]) -> bytes:
    body = bytes([len(name)]) + name
    for key, value in properties.items():
        body += bytes([len(key)]) + key + struct.pack(">I", len(value)) + value
    return struct.pack(">BB", COMMAND, len(body)) + body


def _properties(data: bytes) -> dict[bytes, bytes]:
    found, at = {}, 0
    while at < len(data):
        size = data[at]
        key = data[at + 1:at + 1 + size].lower()
        at += 1 + size
        if at + 4 > len(data):
            raise PeerError("a READY property is cut short")
        length = struct.unpack(">I", data[at:at + 4])[0]
        found[key] = data[at + 4:at + 4 + length]
        at += 4 + length
    return found
