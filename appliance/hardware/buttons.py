"""Arcade buttons and a status LED through gpiozero.

The pin factory is gpiozero's own choice (GPIOZERO_PIN_FACTORY=mock on a laptop; tests pass
a MockFactory). A short press acts on release, so a long hold never also counts as a press:
next / previous switch models; capture freezes and saves the result; holding capture
switches auto/manual; on the teach screen next / previous choose a class, capture adds the
picture to it and holding capture finishes; holding next and previous together (or a
dedicated button) shuts the box down. Any press also clears an error card.
"""

from __future__ import annotations

import logging
from typing import Any

from appliance.config import NO_PIN
from appliance.config import Buttons as ButtonSettings

log = logging.getLogger(__name__)


class Buttons:
    """The configured buttons wired to a StandaloneLoop's actions."""

    def __init__(self, settings: ButtonSettings, kiosk, pin_factory: Any = None) -> None:
        from gpiozero import LED, Button

        self.settings = settings
        self.kiosk = kiosk
        self.devices: dict[str, Any] = {}
        self._held: set[str] = set()
        bounce = settings.bounce_ms / 1000 or None
        holds = {"next": settings.shutdown_hold_s, "previous": settings.shutdown_hold_s,
                 "capture": settings.hold_s, "shutdown": settings.shutdown_hold_s}
        for name, hold in holds.items():
            pin = getattr(settings, name)
            if pin != NO_PIN:
                button = Button(pin, bounce_time=bounce, hold_time=hold,
                                pin_factory=pin_factory)
                button.when_held = lambda _b=None, n=name: self._on_held(n)
                button.when_released = lambda _b=None, n=name: self._on_released(n)
                self.devices[name] = button
        self.led = LED(settings.led, pin_factory=pin_factory) if settings.led != NO_PIN \
            else None

    def _on_held(self, name: str) -> None:
        self._held.add(name)
        if name == "capture":
            log.info("capture held: %s", self.kiosk.hold())
        elif name == "shutdown" or self._both_held():
            self.kiosk.shutdown()

    def _both_held(self) -> bool:
        other = {"next": "previous", "previous": "next"}
        return all(n in self.devices and self.devices[n].is_held for n in other)

    def _on_released(self, name: str) -> None:
        if name in self._held:
            self._held.discard(name)
            return
        action = {"next": self.kiosk.next_model, "previous": self.kiosk.previous_model,
                  "capture": self.kiosk.capture}.get(name)
        if action is not None:
            action()

    def show(self, state: str) -> None:
        """The LED: on when ready, blinking while busy, fast blinking on an error."""
        if self.led is None:
            return
        if state == "ready":
            self.led.on()
        elif state == "busy":
            self.led.blink(on_time=0.3, off_time=0.3)
        else:
            self.led.blink(on_time=0.1, off_time=0.1)

    def close(self) -> None:
        for device in [*self.devices.values(), *([self.led] if self.led else [])]:
            device.close()

    def __enter__(self) -> Buttons:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
