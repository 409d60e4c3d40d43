"""Buttons driven with gpiozero's own MockFactory: press, hold, release."""

import time

import pytest
from gpiozero.pins.mock import MockFactory

from appliance import config
from appliance.hardware.buttons import Buttons


class FakeKiosk:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.mode = "auto"

    def next_model(self):
        self.calls.append("next")

    def previous_model(self):
        self.calls.append("previous")

    def capture(self):
        self.calls.append("capture")

    def hold(self):
        self.mode = "manual" if self.mode == "auto" else "auto"
        self.calls.append("toggle")
        return f"mode is now {self.mode}"

    def shutdown(self):
        self.calls.append("shutdown")


@pytest.fixture
def factory():
    factory = MockFactory()
    yield factory
    factory.reset()


@pytest.fixture
def buttons(factory):
    settings = config.load(env={}, overrides={
        "buttons.next": 17, "buttons.previous": 27, "buttons.capture": 22, "buttons.led": 5,
        "buttons.hold_s": 0.2, "buttons.shutdown_hold_s": 0.3, "buttons.bounce_ms": 0}).buttons
    kiosk = FakeKiosk()
    with Buttons(settings, kiosk, pin_factory=factory) as wired:
        wired.kiosk_calls = kiosk.calls
        yield wired


def _pin(factory, number):
    return factory.pin(number)


def _press(factory, number, seconds=0.0):
    _pin(factory, number).drive_low()  # buttons pull up: pressed reads low
    time.sleep(seconds)
    _pin(factory, number).drive_high()


def _wait(condition, timeout=3.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_short_presses(buttons, factory):
    _press(factory, 17)
    _press(factory, 27)
    _press(factory, 22)
    _wait(lambda: len(buttons.kiosk_calls) == 3)
    assert buttons.kiosk_calls == ["next", "previous", "capture"]


def test_holding_capture_toggles_the_mode_without_capturing(buttons, factory):
    _press(factory, 22, seconds=0.5)
    _wait(lambda: "toggle" in buttons.kiosk_calls)
    time.sleep(0.05)
    assert buttons.kiosk_calls == ["toggle"]


def test_holding_next_and_previous_shuts_down(buttons, factory):
    _pin(factory, 17).drive_low()
    _pin(factory, 27).drive_low()
    _wait(lambda: "shutdown" in buttons.kiosk_calls)
    _pin(factory, 17).drive_high()
    _pin(factory, 27).drive_high()
    time.sleep(0.05)
    assert "next" not in buttons.kiosk_calls and "previous" not in buttons.kiosk_calls


def test_status_led(buttons, factory):
    buttons.show("ready")
    assert _pin(factory, 5).state
    buttons.show("error")
    buttons.show("busy")


def test_duplicate_pins_are_refused_by_the_settings():
    with pytest.raises(config.ConfigError, match="pin 17 is already used by 'buttons.next'"):
        config.load(env={"APPLIANCE_BUTTONS_NEXT": "17", "APPLIANCE_BUTTONS_CAPTURE": "17"})


def test_buttons_switch_the_real_kiosk_and_light_the_led(services, factory, tmp_path):
    from appliance.hardware.cameras import NoCamera
    from appliance.hardware.displays import NoDisplay
    from appliance.standalone import start_standalone

    services.settings.buttons.next = 17
    services.settings.buttons.previous = 27
    services.settings.buttons.led = 5
    services.settings.buttons.bounce_ms = 0
    gallery = start_standalone(services, pin_factory=factory)
    try:
        assert isinstance(gallery.camera.opener(), NoCamera)
        assert isinstance(gallery.display, NoDisplay)
        _wait(lambda: _pin(factory, 5).state)  # ready once the loop runs
        _press(factory, 17)
        _wait(lambda: services.registry.active == "tiny-embed")
        _press(factory, 27)
        _press(factory, 27)
        _wait(lambda: services.registry.active == "tiny-negative")
    finally:
        gallery.close()
