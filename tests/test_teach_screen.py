"""Teaching from the camera: the teach screen (golden images), the whole flow with
gpiozero's MockFactory buttons on the file display with a folder camera, through the same
Teacher as the API, and POST/DELETE /v1/standalone/teach."""

import time

import numpy as np
import pytest
from gpiozero.pins.mock import MockFactory
from PIL import Image, ImageChops

from appliance import pipeline, screens
from appliance.hardware.buttons import Buttons
from appliance.hardware.cameras import FolderCamera, RetryingCamera
from appliance.hardware.displays import FileDisplay
from appliance.standalone import StandaloneLoop
from appliance.teachscreen import TeachSession, note
from tests.conftest import assert_golden, image_bytes
from tests.test_api_teach import AUTH, COLOURS
from tests.test_screens import GOLDEN
from tests.test_standalone import Clock

NEXT, PREVIOUS, CAPTURE = 17, 27, 22


def _photo(colour, size=(120, 80)) -> Image.Image:
    y, x = np.mgrid[0:size[1], 0:size[0]]
    shade = ((x + y) % 40)[..., None]
    return Image.fromarray(np.clip(np.array(colour) + shade - 20, 0, 255).astype(np.uint8))


VIEW = screens.TeachView("door", (
    screens.TeachClass("parcel", 12, _photo((180, 120, 60))),
    screens.TeachClass("nothing", 1, _photo((90, 90, 90))),
    screens.TeachClass("a class with a very long name indeed", 0, None)),
    chosen=1, note="nothing is often taken for parcel (3 of 10): add examples of both")


@pytest.mark.parametrize("size", [(320, 180), (180, 320)], ids=["landscape", "portrait"])
@pytest.mark.parametrize("name, view", [
    ("teach", VIEW),
    ("teach-alert", screens.TeachView("door", VIEW.classes[:2], 0, alert=True, note=(
        "the embedding model lite0-embed that new examples need is not serving")))])
def test_golden(name, view, size):
    image = screens.teach(size, _photo((40, 90, 160), (160, 120)), view)
    assert image.size == size and image.mode == "RGB"
    assert_golden(image, GOLDEN / f"{name}-{size[0]}x{size[1]}.png")


def test_many_classes_keep_the_chosen_one_in_sight():
    many = tuple(screens.TeachClass(f"class {i}", i, None) for i in range(40))
    chosen = screens.teach((240, 240), None, screens.TeachView("m", many, 37))
    first = screens.teach((240, 240), None, screens.TeachView("m", many, 0))
    assert chosen.size == (240, 240)
    assert ImageChops.difference(chosen, first).getbbox() is not None


# -- the flow with buttons -------------------------------------------------------------------

@pytest.fixture
def factory():
    factory = MockFactory()
    yield factory
    factory.reset()


@pytest.fixture
def camera_folder(tmp_path):
    folder = tmp_path / "camera"
    folder.mkdir()
    return folder


def _show(folder, colour, kiosk) -> None:
    """Put a picture of `colour` before the folder camera, and let its next frame come."""
    for old in folder.iterdir():
        old.unlink()
    (folder / f"{colour[0]}-{colour[1]}-{colour[2]}.jpg").write_bytes(
        image_bytes(colour, size=(96, 64)))
    kiosk.test_clock.now += 1.0


@pytest.fixture
def kiosk(services, camera_folder, tmp_path, factory):
    """A kiosk on a folder camera and the file display, with MockFactory buttons, whose
    box learns with the tiny embedder."""
    services.settings.teach.embedder = "tiny-embed"
    clock = Clock()
    camera = RetryingCamera(lambda: FolderCamera(str(camera_folder), 1.0, clock))
    display = FileDisplay(str(tmp_path / "screen"), (320, 180))
    kiosk = StandaloneLoop(services, camera, display, clock=clock, run_command=lambda c: None)
    kiosk.status_until = 0.0
    kiosk.test_clock = clock
    services.loop = kiosk
    buttons = services.settings.buttons
    buttons.next, buttons.previous, buttons.capture = NEXT, PREVIOUS, CAPTURE
    buttons.hold_s, buttons.bounce_ms = 0.2, 0
    with Buttons(buttons, kiosk, pin_factory=factory):
        yield kiosk


def _press(factory, pin, seconds=0.0):
    factory.pin(pin).drive_low()  # buttons pull up: pressed reads low
    time.sleep(seconds)
    factory.pin(pin).drive_high()


def _wait(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "waited too long"
        time.sleep(0.01)


def _latest(kiosk) -> Image.Image:
    with Image.open(kiosk.display.latest()) as image:
        return image.convert("RGB").copy()


def _add_with_buttons(kiosk, factory, folder, colour, cls, count):
    _show(folder, colour, kiosk)
    kiosk.tick()  # the frame on the screen is what a press adds
    _press(factory, CAPTURE)
    _wait(lambda: len(kiosk.services.teacher.examples("colours", cls)) == count)
    _wait(lambda: not kiosk.teaching.busy)


def test_teach_with_the_buttons_then_the_model_answers(kiosk, factory, camera_folder,
                                                      services):
    _show(camera_folder, COLOURS["red"], kiosk)
    session = kiosk.teach("colours", ["red", "blue", "green"])
    screen = kiosk.tick()
    assert ImageChops.difference(screen, screens.teach(
        (320, 180), kiosk._frame, session.view())).getbbox() is None
    assert kiosk.tick() is None  # nothing new: nothing drawn
    _add_with_buttons(kiosk, factory, camera_folder, COLOURS["red"], "red", 1)
    assert "colours" not in services.registry.runners()  # one class: not yet
    _press(factory, NEXT)
    _wait(lambda: session.chosen == 1)
    _add_with_buttons(kiosk, factory, camera_folder, COLOURS["blue"], "blue", 1)
    assert "colours" in services.registry.runners()
    assert session.view().note.startswith("one example per class")
    _press(factory, NEXT)
    _press(factory, PREVIOUS)
    _press(factory, PREVIOUS)
    _wait(lambda: session.chosen == 0)
    for k, shade in enumerate([(210, 40, 25), (190, 20, 40)]):
        _add_with_buttons(kiosk, factory, camera_folder, shade, "red", 2 + k)
    _press(factory, NEXT)
    _wait(lambda: session.chosen == 1)
    _add_with_buttons(kiosk, factory, camera_folder, (40, 50, 210), "blue", 2)
    view = session.view()
    assert [(c.name, c.count) for c in view.classes] == [("red", 3), ("blue", 2),
                                                          ("green", 0)]
    assert view.classes[1].thumbnail is not None and view.classes[2].thumbnail is None
    assert view.note == "right on 100% of its 5 photos, each left out in turn"
    assert ImageChops.difference(kiosk.tick(), _latest(kiosk)).getbbox() is None

    _press(factory, CAPTURE, seconds=0.5)  # a hold finishes
    _wait(lambda: kiosk.teaching is None)
    assert services.registry.active == "colours"
    assert len(services.teacher.examples("colours", "blue")) == 2  # the hold added nothing
    _show(camera_folder, COLOURS["blue"], kiosk)
    kiosk.tick()
    assert kiosk.caption().model == "colours"
    answer = pipeline.infer_image(services.registry.get("colours"), kiosk._frame)
    assert answer.result.body["predictions"][0]["label"] == "blue"


def test_a_capture_that_cannot_be_added_says_why_on_the_screen(kiosk, factory,
                                                                camera_folder, services):
    services.settings.teach.embedder = "gone"
    _show(camera_folder, COLOURS["red"], kiosk)
    session = kiosk.teach("colours", ["red", "blue"])
    kiosk.tick()
    _press(factory, CAPTURE)
    _wait(lambda: session.alert)
    assert session.note.startswith("the embedding model gone that new examples need is "
                                   "not serving")
    assert services.teacher.examples("colours", "red") == []
    assert kiosk.tick() is not None  # the note is drawn


def test_a_capture_without_a_camera_picture_says_so(services):
    services.settings.teach.embedder = "tiny-embed"
    session = TeachSession(services.teacher, "colours", ["red", "blue"])
    assert session.capture(None) is None
    assert session.alert and session.note.startswith("no camera picture yet")
    assert services.teacher.examples("colours", "red") == []


def test_the_teach_screen_needs_two_good_class_names(services):
    services.settings.teach.embedder = "tiny-embed"
    from appliance.errors import BadRequest

    with pytest.raises(BadRequest, match="needs two or more classes"):
        TeachSession(services.teacher, "door", ["parcel", "Parcel"])
    with pytest.raises(BadRequest, match="has a '/'"):
        TeachSession(services.teacher, "door", ["a/b", "c"])
    with pytest.raises(BadRequest, match="is not a model name"):
        TeachSession(services.teacher, "Door!", ["a", "b"])


def test_notes_say_what_a_fit_means():
    assert note({"serving": False, "reason": "two classes"}) == "two classes"
    assert note({"serving": True, "report": {"warnings": ["add more"]}}) == "add more"
    assert note({"serving": True, "report": {"warnings": [], "loo_accuracy": 0.875,
                                             "examples": 8}}) == \
        "right on 88% of its 8 photos, each left out in turn"


# -- over HTTP ---------------------------------------------------------------------------------

def test_the_teach_screen_over_http(client, services, kiosk, camera_folder):
    body = {"model": "colours", "classes": ["red", "blue"]}
    assert client.post("/v1/standalone/teach", json=body).status_code == 401
    started = client.post("/v1/standalone/teach", json=body, headers=AUTH)
    assert started.status_code == 200, started.json
    assert started.json == {"teaching": "colours", "classes": ["red", "blue"]}
    assert kiosk.teaching.name == "colours"
    assert client.delete("/v1/standalone/teach").status_code == 401
    stopped = client.delete("/v1/standalone/teach", headers=AUTH)
    assert stopped.json == {"teaching": None, "finished": "colours"}
    assert kiosk.teaching is None


@pytest.mark.parametrize("body, words", [
    ({"model": "colours"}, "needs two or more classes"),
    ({"model": "colours", "classes": "red,blue"}, 'the body must be {"model": "NAME"'),
    ({"classes": ["a", "b"]}, 'the body must be {"model": "NAME"'),
    ({"model": "colours", "classes": ["unknown", "red"]}, "is the label the model answers")])
def test_a_bad_teach_screen_request_is_400(client, kiosk, body, words):
    response = client.post("/v1/standalone/teach", json=body, headers=AUTH)
    assert response.status_code == 400 and words in response.json["error"]["message"]
    assert kiosk.teaching is None


def test_no_screen_loop_no_teach_screen(client, services):
    services.loop = None
    response = client.post("/v1/standalone/teach", json={"model": "a", "classes": ["b", "c"]},
                           headers=AUTH)
    assert response.status_code == 409
    assert "start it with --standalone" in response.json["error"]["message"]
