"""The C2PA manifest store in a PNG or JPEG, found and measured before the SDK reads it.

The SDK validates every manifest in a store and turns each of its bytes into tens of bytes
of objects (a CBOR empty list is one byte in the file and about 150 in memory once the SDK
has made it JSON and Python has parsed that): a 3.7 MB PNG whose store held 21 nested
manifests took 560 MB and 4 s of CPU to verify, three at once 1.6 GB. The SDK also walks a
PNG chunk by chunk at about 14 us a chunk: a 20 MB PNG of empty chunks took 21 s. The box's
own files hold one manifest of about 4 KB in a handful of chunks, so /v1/verify reads a
store of at most MAX_BYTES holding at most MAX_MANIFESTS manifests and MAX_INGREDIENTS
ingredients, never a compressed one (the SDK would inflate it), in a PNG of at most
MAX_CHUNKS chunks; anything else is refused before the SDK sees it (docs/hardening.md,
row 43).

A store is JUMBF: boxes of a 4-byte length and a 4-byte type, `jumb` superboxes whose first
box (`jumd`) holds a 16-byte type UUID, a toggles byte and a label. In a PNG it is the
`caBX` chunk; in a JPEG, APP11 segments (`JP`, an instance number, a sequence number, then
the box, its header repeated in each further segment).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from appliance.errors import PayloadTooLarge

MAX_BYTES = 64 * 1024  # the box's own store is about 4 KB
MAX_MANIFESTS = 4  # the box's own store holds 1
MAX_INGREDIENTS = 8  # the box's own manifest names 1 (the uploaded picture), not embedded
MAX_CHUNKS = 10_000  # a 20 MB PNG in libpng's 8 KB chunks has 2,560
MAX_NESTING = 8  # superboxes in superboxes: store, manifest, assertion store, assertion
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_UUID_TAIL = bytes.fromhex("00110010800000aa00389b71")
MANIFEST_TYPES = (b"c2ma" + _UUID_TAIL, b"c2um" + _UUID_TAIL)  # a manifest, an update manifest
INGREDIENT = b"c2pa.ingredient"  # the labels of ingredient assertions (.v2, .v3, __2...)
COMPRESSED = b"brob"  # a Brotli-compressed box
_APP11 = re.compile(rb"\xff\xeb(..)JP(..)(....)", re.S)
LIMITS = (f"verify reads stores of at most {MAX_BYTES // 1024} KB, {MAX_MANIFESTS} manifests "
          f"and {MAX_INGREDIENTS} ingredients (the box's own: about 4 KB, one manifest), "
          "none compressed")


@dataclass(frozen=True)
class Store:
    """What a file's manifest store holds, as far as its boxes read (`broken` says where
    they did not; the SDK reports it in its own words)."""

    size: int  # bytes of the store in the file, all of its chunks or segments together
    manifests: int = 0
    ingredients: int = 0
    compressed: bool = False
    broken: str = ""


def check(data: bytes, fmt: str) -> Store:
    """The manifest store of `data` (a PNG or JPEG, by `fmt`) when the SDK may read it.
    Raises PayloadTooLarge naming the limit when the store, its manifests or ingredients,
    or the PNG's chunks are too many, or the store is compressed."""
    store = measure(data, fmt)
    if store.size > MAX_BYTES:
        raise PayloadTooLarge(f"the file's C2PA manifest store is {_size(store.size)}: "
                              f"{LIMITS}")
    if store.manifests > MAX_MANIFESTS or store.ingredients > MAX_INGREDIENTS:
        raise PayloadTooLarge(f"the file's C2PA manifest store holds {store.manifests} "
                              f"manifests and {store.ingredients} ingredients: {LIMITS}")
    if store.compressed:
        raise PayloadTooLarge(f"the file's C2PA manifest store is compressed: {LIMITS}")
    return store


def measure(data: bytes, fmt: str) -> Store:
    """What the manifest store of `data` holds (size 0: there is none). Raises
    PayloadTooLarge for a PNG of more than MAX_CHUNKS chunks."""
    parts = _png_store(data) if fmt == "PNG" else _jpeg_store(data)
    size = sum(len(part) for part in parts)
    if size == 0 or size > MAX_BYTES:
        return Store(size)
    return _tally(b"".join(parts), size)


def _png_store(data: bytes) -> list[bytes]:
    """The data of every `caBX` chunk, walking the chunks as the SDK does."""
    parts, at, chunks = [], len(PNG_SIGNATURE), 0
    while at + 8 <= len(data):
        chunks += 1
        if chunks > MAX_CHUNKS:
            raise PayloadTooLarge(f"the PNG has more than {MAX_CHUNKS} chunks: verify reads "
                                  "the files the box makes (a handful of chunks)")
        length, kind = struct.unpack_from(">I4s", data, at)
        if kind == b"caBX":
            parts.append(data[at + 8:at + 8 + length])
        at += 12 + length
    return parts


def _jpeg_store(data: bytes) -> list[bytes]:
    """The JUMBF of every APP11 `JP` segment, put back together: the first segment of an
    instance whole, the next ones without the box header they repeat. Found by their marker
    anywhere in the file (a marker cannot occur inside a JPEG's compressed data; inside
    another segment it is counted too: too much, never too little)."""
    instances: dict[bytes, list[bytes]] = {}
    for match in _APP11.finditer(data):
        length = struct.unpack(">H", match.group(1))[0]
        body = data[match.end():match.start() + 2 + length]
        parts = instances.setdefault(match.group(2), [])
        if parts and len(body) >= 8:
            head = 16 if struct.unpack_from(">I", body)[0] == 1 else 8
            body = body[head:]
        parts.append(body)
    return [b"".join(parts) for parts in instances.values()]


def _tally(store: bytes, size: int) -> Store:
    """Count the manifests and ingredient assertions in the JUMBF `store`. Where its boxes
    do not read, what came before still counts (the SDK may read as far) and `broken` says
    where."""
    manifests = ingredients = 0
    compressed, broken = False, ""
    pending = [(0, len(store), 0)]
    while pending:
        start, end, depth = pending.pop()
        try:
            for kind, low, high in _boxes(store, start, end):
                compressed |= kind == COMPRESSED
                if kind != b"jumb":
                    continue
                if depth >= MAX_NESTING:
                    raise ValueError(f"superboxes nested deeper than {MAX_NESTING}")
                uuid, label = _description(store, low, high)
                manifests += uuid in MANIFEST_TYPES
                ingredients += label.startswith(INGREDIENT)
                pending.append((low, high, depth + 1))
        except ValueError as exc:
            broken = broken or str(exc)
    return Store(size, manifests, ingredients, compressed, broken)


def _boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, content start, content end) of each box in data[start:end]. Raises ValueError
    for a box that does not fit."""
    at = start
    while at < end:
        if end - at < 8:
            raise ValueError(f"a box header cut short at byte {at}")
        length, kind = struct.unpack_from(">I4s", data, at)
        head = 8
        if length == 1:
            if end - at < 16:
                raise ValueError(f"a box header cut short at byte {at}")
            length, head = struct.unpack_from(">Q", data, at + 8)[0], 16
        elif length == 0:
            length = end - at  # to the end
        if length < head or at + length > end:
            raise ValueError(f"a box of {length} bytes at byte {at} does not fit")
        yield kind, at + head, at + length
        at += length


def _description(data: bytes, start: int, end: int) -> tuple[bytes, bytes]:
    """The type UUID and label of the superbox whose content is data[start:end]. Raises
    ValueError when its first box is not a description box."""
    for kind, low, high in _boxes(data, start, end):
        if kind != b"jumd" or high - low < 17:
            break
        label = data[low + 17:high].split(b"\0", 1)[0] if data[low + 16] & 0x02 else b""
        return data[low:low + 16], label
    raise ValueError(f"a superbox at byte {start - 8} has no description box")


def _size(size: int) -> str:
    return f"{size / 1048576:.1f} MB" if size >= 1048576 else f"{size / 1024:.0f} KB"
