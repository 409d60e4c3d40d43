"""Teaching from the box's own camera: the state of the teach screen.

The buttons drive it through the StandaloneLoop: previous / next choose a class, capture adds the
picture on the screen to the chosen class, a hold finishes. An example goes through
Teacher.add, the same store, fit and swap as POST /v1/models/NAME/examples/CLASS; this
module only remembers which class is chosen, what the last fit said, and the thumbnails.
"""

from __future__ import annotations

import io
import logging
import threading
from pathlib import Path
from typing import Any

from PIL import Image

from appliance import screens
from appliance.bundle import check_name
from appliance.errors import ApplianceError, BadRequest
from appliance.teach import Teacher, check_class

log = logging.getLogger(__name__)
THUMBNAIL = 160  # pixels on the longer side: plenty for a row of the teach screen


class TeachSession:
    """One model being taught on the screen. Thread-safe: the buttons call `choose` and
    `capture`, the loop calls `view`."""

    def __init__(self, teacher: Teacher, name: str, classes: list[str]) -> None:
        """Raises BadRequest for a bad model or class name, or fewer than two classes."""
        check_name(name)
        for cls in classes:
            check_class(cls, teacher.settings.teach.unknown_label)
        self.classes = teacher.classes(name)
        folded = {c.casefold() for c in self.classes}
        for cls in classes:  # Cat beside cat is one class, as the API has it
            if cls.casefold() not in folded:
                self.classes.append(cls)
                folded.add(cls.casefold())
        if len(self.classes) < 2:
            raise BadRequest(f"teaching {name} on the screen needs two or more classes: name "
                             "them (\"classes\": [\"parcel\", \"nothing\"])")
        self.teacher, self.name = teacher, name
        self.chosen = 0
        self.note, self.alert = "", False
        self.busy = False
        self.version = 0  # changes whenever the screen should be drawn again
        self._thumbs: dict[str, tuple[Path, Image.Image]] = {}
        self._lock = threading.Lock()
        self.last: dict[str, Any] | None = None

    def choose(self, step: int) -> str:
        """Choose the next class (or the previous with step=-1); its name."""
        with self._lock:
            self.chosen = (self.chosen + step) % len(self.classes)
            self.version += 1
            return self.classes[self.chosen]

    def capture(self, frame: Image.Image | None) -> dict[str, Any] | None:
        """Add `frame` to the chosen class, refit and serve; the refit's answer, or None
        when there is no picture or one is being added (the note says what went wrong)."""
        with self._lock:
            if frame is None:
                self._say("no camera picture yet: check the camera, then press again", True)
            if frame is None or self.busy:
                return None
            self.busy, cls = True, self.classes[self.chosen]
            self._say(f"adding a photo of {cls}...", False)
        try:
            answer = self.teacher.add(self.name, cls, _jpeg(frame))
        except ApplianceError as exc:
            log.warning("teach screen: %s", exc.message)
            answer = None
            with self._lock:
                self._say(exc.message, True)
        else:
            with self._lock:
                self.last = answer
                self._say(note(answer), False)
        finally:
            with self._lock:
                self.busy = False
                self.version += 1
        return answer

    def view(self) -> screens.TeachView:
        """What the screen shows now."""
        with self._lock:
            chosen, words, alert = self.chosen, self.note, self.alert
        rows = tuple(self._row(cls) for cls in self.classes)
        return screens.TeachView(self.name, rows, chosen, words, alert)

    def _row(self, cls: str) -> screens.TeachClass:
        photos = self.teacher.examples(self.name, cls)
        return screens.TeachClass(cls, len(photos), self._thumb(cls, photos[-1])
                                  if photos else None)

    def _thumb(self, cls: str, path: Path) -> Image.Image | None:
        cached = self._thumbs.get(cls)
        if cached is not None and cached[0] == path:
            return cached[1]
        try:
            with Image.open(path) as image:
                image.draft("RGB", (THUMBNAIL, THUMBNAIL))  # JPEG: decode small
                thumb = image.convert("RGB")
                thumb.thumbnail((THUMBNAIL, THUMBNAIL))
        except OSError:
            return None
        self._thumbs[cls] = (path, thumb)
        return thumb

    def _say(self, words: str, alert: bool) -> None:
        self.note, self.alert = words, alert
        self.version += 1


def note(answer: dict[str, Any]) -> str:
    """The teach screen's line about a refit: its first warning, its accuracy, or why it
    does not answer yet."""
    if not answer.get("serving"):
        return answer.get("reason", "")
    report = answer.get("report") or {}
    if report.get("warnings"):
        return report["warnings"][0]
    accuracy = report.get("loo_accuracy")
    if accuracy is None:
        return "it answers; add more photos to measure it"
    return (f"right on {accuracy:.0%} of its {report.get('examples')} photos, each left "
            "out in turn")


def _jpeg(frame: Image.Image) -> bytes:
    buffer = io.BytesIO()
    frame.convert("RGB").save(buffer, "JPEG", quality=92)
    return buffer.getvalue()
