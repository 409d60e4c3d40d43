"""Teach the box: a taught model from example photos, refitted after every change.

A taught model is an ordinary `classify` bundle in the models folder: a copy of an embedding
bundle's graph (teach.embedder, `lite0-embed` by default), the same input spec, and a head
(appliance.head: class means, an unknown threshold, a temperature) in `head.npz`. So
everything that serves bundles serves it, and it can be exported and installed elsewhere.

The examples live in the state folder, STATE/teach/NAME/CLASS/ID.EXT beside ID.npy, the
example's embedding (so a refit never runs the model again), each written power-cut safe;
the photo is written last and marks the example as whole. After each change the head is
refitted in numpy and the bundle written beside the models and swapped in: a head-only
change keeps the model's sessions (Registry.refresh), a new graph is an install. One change
of a model at a time: the next waits teach.wait_s, then gets 409.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import hashlib
import json
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from appliance import __version__, imaging, pipeline
from appliance import bundle as bundles
from appliance import head as heads
from appliance import install as installer
from appliance.config import Settings
from appliance.errors import (
    ApplianceError,
    BadRequest,
    Conflict,
    InsufficientStorage,
    NotFound,
    Unavailable,
)
from appliance.registry import Registry
from appliance.schema import text_problem
from appliance.storage import fsync_dir, write_bytes_atomic, write_text_atomic

META = "teach.json"
MAX_CLASS_LENGTH = 64
MAX_CLASS_BYTES = 200  # a file name holds 255 bytes: 64 characters may take 256
ID_PATTERN = re.compile(r"^[0-9a-f]{20}$")
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "BMP": "bmp", "GIF": "gif"}


def check_class(name: str, unknown: str) -> None:
    """Raise BadRequest unless `name` can be a class: 1-64 characters of one line, no '/',
    no leading dot or space, not the unknown label."""
    problem = "is empty" if not name else text_problem(name, MAX_CLASS_LENGTH)
    if problem:
        pass
    elif "/" in name or "\\" in name:
        problem = "has a '/' or '\\'"
    elif name.startswith(".") or name != name.strip():
        problem = "starts with a dot, or starts or ends with a space"
    elif len(name.encode("utf-8")) > MAX_CLASS_BYTES:
        problem = f"is over {MAX_CLASS_BYTES} bytes in UTF-8"
    elif name.casefold() == unknown.casefold():
        problem = "is the label the model answers for 'none of these' (teach.unknown_label)"
    if problem:
        raise BadRequest(f"class name {name[:80]!r} {problem}: a class name is 1-"
                         f"{MAX_CLASS_LENGTH} characters of one line without '/'")


class Teacher:
    """The taught models of one box: their examples, fits and bundles."""

    def __init__(self, settings: Settings, registry: Registry, budget=None) -> None:
        self.settings = settings
        self.registry = registry
        self.budget = budget  # the decode budget uploads share
        self.root = Path(settings.state.dir) / "teach"
        self._locks: dict[str, threading.Lock] = {}
        # Each model's stored embeddings once read, by file (ids are never reused): a
        # refit of 500 examples read them all again in 60 ms.
        self._vectors: dict[str, dict[str, np.ndarray]] = {}
        self._guard = threading.Lock()

    @contextlib.contextmanager
    def changing(self, name: str) -> Iterator[None]:
        """Hold model `name`'s one change at a time. Raises Conflict after teach.wait_s."""
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
        if not lock.acquire(timeout=self.settings.teach.wait_s):
            raise Conflict(f"a fit of {name} is running: retry in a moment",
                           headers={"Retry-After": "1"})
        try:
            yield
        finally:
            lock.release()

    def taught(self, name: str) -> bool:
        return (self.root / name / META).is_file()

    def add(self, name: str, cls: str, data: bytes, author: str | None = None,
            license: str | None = None) -> dict[str, Any]:
        """Add one example photo to class `cls` of model `name` (both made when new), refit
        and serve. Raises BadRequest, UnsupportedMedia, PayloadTooLarge, Conflict,
        InsufficientStorage (a bound, or a full disk) or Unavailable (no embedder)."""
        check_class(cls, self.settings.teach.unknown_label)
        with self.changing(name):
            meta = self._meta(name)
            if meta is None and name in self.registry.names():
                raise Conflict(f"model {name} is installed and was not taught on this box: "
                               "choose another name")
            self._check_bounds(name, cls)
            embedder = self.embedder(meta)
            vector = self._embed(embedder, data)
            with _disk(self.root):
                meta = self._save_meta(name, meta, embedder, author, license)
                example = self._store(name, cls, data, vector)
                result = self._publish(name, meta)
        return {"model": name, "class": cls, "id": example, **result}

    def delete_class(self, name: str, cls: str) -> dict[str, Any]:
        """Remove class `cls` and its examples, refit. Raises NotFound."""
        with self.changing(name):
            folder = self._class_folder(name, cls)
            trash = folder.with_name(f".removed.{secrets.token_hex(8)}")
            folder.rename(trash)
            fsync_dir(folder.parent)
            shutil.rmtree(trash, ignore_errors=True)
            with _disk(self.root):
                return {"model": name, "removed": cls,
                        **self._publish(name, self._meta(name))}

    def delete_example(self, name: str, cls: str, example: str) -> dict[str, Any]:
        """Remove one example (its class too when it was the last), refit. Raises NotFound."""
        with self.changing(name):
            folder = self._class_folder(name, cls)
            photos = [p for p in folder.glob(f"{example}.*") if p.suffix != ".npy"] \
                if ID_PATTERN.fullmatch(example) else []
            if not photos:
                raise NotFound(f"class {cls!r} of {name} has no example {example!r} (GET "
                               f"/v1/models/{name}/examples/CLASS lists them)")
            for path in [*photos, folder / f"{example}.npy"]:  # the photo first: it marks
                path.unlink(missing_ok=True)
            if not self.examples(name, cls):
                shutil.rmtree(folder, ignore_errors=True)
            fsync_dir(folder.parent)
            with _disk(self.root):
                return {"model": name, "removed": f"{cls}/{example}",
                        **self._publish(name, self._meta(name))}

    def describe(self, name: str) -> dict[str, Any]:
        """The taught model's classes with their counts, its embedder and last report.
        Raises NotFound."""
        meta = self._meta(name)
        if meta is None:
            raise NotFound(f"no taught model named {name!r}: add an example to create one "
                           f"(POST /v1/models/{name}/examples/CLASS)")
        classes = [{"name": c, "examples": len(self.examples(name, c))}
                   for c in self.classes(name)]
        runner = self.registry.runners().get(name)
        report = None
        if runner is not None and runner.bundle.head is not None:
            with contextlib.suppress(OSError, ValueError):
                report = json.loads((runner.bundle.path / "report.json").read_text())
        return {"model": name, "embedder": meta["embedder"], "serving": runner is not None,
                "examples": sum(c["examples"] for c in classes), "classes": classes,
                "max_examples": self.settings.teach.max_examples, "report": report}

    def describe_class(self, name: str, cls: str) -> dict[str, Any]:
        """The ids of one class's examples, oldest first. Raises NotFound."""
        self._class_folder(name, cls)
        return {"model": name, "class": cls,
                "examples": [{"id": p.stem, "bytes": p.stat().st_size}
                             for p in self.examples(name, cls)]}

    def photo(self, name: str, cls: str, example: str) -> tuple[bytes, str]:
        """One example's photo as stored and its MIME type (the page's thumbnails).
        Raises NotFound."""
        folder = self._class_folder(name, cls)
        found = [p for p in self.examples(name, cls) if p.stem == example]
        if not found:
            raise NotFound(f"class {cls!r} of {name} has no example {example[:40]!r} (GET "
                           f"/v1/models/{name}/examples/{cls} lists them)")
        kind = {v: k for k, v in EXTENSIONS.items()}.get(found[0].suffix[1:], "JPEG")
        return (folder / found[0].name).read_bytes(), f"image/{kind.lower()}"

    def classes(self, name: str) -> list[str]:
        """The classes of `name` that hold an example, sorted."""
        folder = self.root / name
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir()
                      if p.is_dir() and not p.name.startswith(".") and self.examples(name,
                                                                                    p.name))

    def examples(self, name: str, cls: str) -> list[Path]:
        """The photos of one class whose embedding is stored, oldest first (one listing of
        the folder: no stat per example)."""
        folder = self.root / name / cls
        try:
            files = set(os.listdir(folder))
        except (FileNotFoundError, NotADirectoryError):
            return []
        stems = {f[:-4] for f in files if f.endswith(".npy")}
        return sorted(folder / f for f in files if not f.endswith(".npy")
                      and f.partition(".")[0] in stems
                      and ID_PATTERN.fullmatch(f.partition(".")[0]))

    def embedder(self, meta: dict | None):
        """The runner of the embed bundle this model learns with. Raises Unavailable
        naming it when it is not installed or not serving."""
        name = meta["embedder"] if meta else self.settings.teach.embedder
        try:
            runner = self.registry.get(name)
        except ApplianceError as exc:
            raise Unavailable(f"the embedding model {name} that new examples need is not "
                              f"serving ({exc.message}): install it again (PUT "
                              f"/v1/models/{name}); the taught model keeps serving") from None
        if runner.bundle.manifest.task != "embed":
            raise Unavailable(f"model {name} is a {runner.bundle.manifest.task} model, not "
                              "an embed model: set teach.embedder to an embed bundle")
        return runner

    def _meta(self, name: str) -> dict[str, Any] | None:
        try:
            return json.loads((self.root / name / META).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None

    def _save_meta(self, name: str, meta: dict | None, embedder, author: str | None,
                   license: str | None) -> dict[str, Any]:
        if meta is not None and author is None and license is None:
            return meta
        teach = self.settings.teach
        meta = meta or {"embedder": embedder.bundle.name, "author": teach.author,
                        "license": teach.license,
                        "embedder_attribution": dict(embedder.bundle.manifest.attribution),
                        "created": _now()}
        meta.update({k: v for k, v in (("author", author), ("license", license)) if v})
        write_text_atomic(self.root / name / META, json.dumps(meta, indent=2) + "\n")
        return meta

    def _check_bounds(self, name: str, cls: str) -> None:
        teach, classes = self.settings.teach, self.classes(name)
        total = sum(len(self.examples(name, c)) for c in classes)
        if total >= teach.max_examples:
            raise InsufficientStorage(f"model {name} holds {total} examples, the limit "
                                      "(teach.max_examples): delete some first")
        if cls in classes:
            return
        for other in classes:
            if other.casefold() == cls.casefold():
                raise Conflict(f"class {cls!r} is the class {other!r} of {name} spelt "
                               f"another way: use {other!r}")
        if len(classes) >= teach.max_classes:
            raise InsufficientStorage(f"model {name} has {len(classes)} classes, the limit "
                                      "(teach.max_classes): delete one first")

    def _class_folder(self, name: str, cls: str) -> Path:
        if self._meta(name) is None:
            raise NotFound(f"no taught model named {name!r}")
        folder = self.root / name / cls
        if cls.startswith(".") or "/" in cls or not folder.is_dir():
            raise NotFound(f"{name} has no class {cls!r}: its classes are "
                           f"{', '.join(self.classes(name)) or 'none'}")
        return folder

    def _embed(self, runner, data: bytes) -> np.ndarray:
        answer = pipeline.infer(runner, data, {}, self.settings.imaging.max_pixels,
                                budget=self.budget)
        return np.asarray(answer.result.body["embedding"], dtype=np.float32)

    def _store(self, name: str, cls: str, data: bytes, vector: np.ndarray) -> str:
        folder = self.root / name / cls
        if not folder.is_dir():
            folder.mkdir(parents=True)
            fsync_dir(folder.parent)
        example = f"{time.time_ns():016x}{secrets.token_hex(2)}"
        buffer = _npy(vector)
        write_bytes_atomic(folder / f"{example}.npy", buffer)
        extension = EXTENSIONS.get(imaging.sniff(data), "img")
        write_bytes_atomic(folder / f"{example}.{extension}", data)  # last: it is whole now
        return example

    def _publish(self, name: str, meta: dict) -> dict[str, Any]:
        """Refit `name` from its stored embeddings and serve the new bundle; with fewer
        than two classes it stops serving."""
        started = time.perf_counter()
        classes = self.classes(name)
        if len(classes) < 2:
            if name in self.registry.names():
                self.registry.remove(name)
            return {"serving": False, "classes": {c: len(self.examples(name, c))
                                                  for c in classes},
                    "reason": "a taught model answers once two classes have an example"}
        vectors, targets = self._embeddings(name, classes)
        threshold = self.settings.teach.threshold
        fitted = heads.fit(vectors, targets, classes, None if threshold == -1 else threshold)
        base = self._base(name, meta)
        staging = installer.new_staging(self.registry.models_dir)
        try:
            folder = self._write(staging, name, meta, base, classes, fitted)
            self.registry.refresh(folder, name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return {"serving": True, "classes": dict(zip(classes, np.bincount(targets).tolist(),
                                                     strict=True)),
                "report": fitted.report,
                "fit_ms": round((time.perf_counter() - started) * 1000, 1)}

    def _embeddings(self, name: str, classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
        vectors, targets = [], []
        cache = self._vectors.setdefault(name, {})
        seen = set()
        for k, cls in enumerate(classes):
            for photo in self.examples(name, cls):
                key = str(photo.with_suffix(".npy"))
                if key not in cache:
                    cache[key] = np.load(key, allow_pickle=False)
                vectors.append(cache[key])
                targets.append(k)
                seen.add(key)
        for key in set(cache) - seen:  # deleted examples
            del cache[key]
        return np.stack(vectors), np.asarray(targets)

    def _base(self, name: str, meta: dict) -> bundles.Bundle:
        """The bundle whose graph the fit copies: the taught model's own while it serves
        (so a change needs no embedder), else the embedder's."""
        runner = self.registry.runners().get(name)
        if runner is not None and runner.bundle.head is not None:
            return runner.bundle
        return self.embedder(meta).bundle

    def _write(self, staging: Path, name: str, meta: dict, base: bundles.Bundle,
               classes: list[str], fitted: heads.Fit) -> Path:
        head = fitted.head.to_bytes()
        labels = [*classes, self.settings.teach.unknown_label]
        manifest = _manifest(name, meta, base, labels, head, fitted.report)
        report = dict(fitted.report, embedder=meta["embedder"], fitted_at=_now())
        bundles.write(staging / name, manifest, base.model_path, labels=labels,
                      extras={"head.npz": head,
                              "report.json": json.dumps(report, indent=2) + "\n"})
        return staging / name


def _manifest(name: str, meta: dict, base: bundles.Bundle, labels: list[str], head: bytes,
              report: dict) -> dict[str, Any]:
    raw = base.manifest.raw
    digest = hashlib.sha256(head + "\n".join(labels).encode("utf-8")).hexdigest()
    credit = meta.get("embedder_attribution", {})
    source = (f"taught on this box from {report['examples']} example photos; features: "
              f"{meta['embedder']} by {credit.get('author', 'unknown')} "
              f"({credit.get('license', 'unknown licence')})")[:500]
    return {
        "format": bundles.FORMAT, "name": name, "version": f"taught-{digest[:12]}",
        "task": "classify",
        "description": (f"Taught on this box: {', '.join(labels[:-1])}")[:4000],
        "attribution": {"author": meta["author"], "source": source,
                        "license": meta["license"]},
        "model": {k: v for k, v in raw["model"].items() if k != "sha256"} | {
            "file": "model.onnx", "sha256": "0" * 64},
        "input": raw["input"],
        "output": {"labels": "labels.txt", "activation": "softmax",
                   "top_k": min(5, len(labels)),
                   "tensor": base.manifest.output.get("tensor", ""), "head": "head.npz",
                   "head_sha256": hashlib.sha256(head).hexdigest(), "unknown": labels[-1]},
        "created_by": {"tool": "appliance teach", "version": __version__,
                       "source_sha256": base.manifest.model["sha256"]},
        **({"serving": raw["serving"]} if raw.get("serving") else {}),
    }


def _npy(vector: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, vector.astype(np.float32), allow_pickle=False)
    return buffer.getvalue()


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


@contextlib.contextmanager
def _disk(folder: Path) -> Iterator[None]:
    """Turn a full disk into 507, saying what was kept."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise InsufficientStorage(f"the disk holding {folder} is full: the previous fit "
                                  "still serves; free some space and try again") from None

