"""The kiosk page says the size of its screen (`/v1/events?width=&height=`) and the box draws
its frames for that size and shape, within the configured display's pixels; absurd sizes are
400 naming the parameter. Over HTTP (Flask's client) with the real loop and a folder camera."""

import io

import pytest
from PIL import Image

from appliance.hardware.cameras import FolderCamera
from appliance.hardware.displays import KioskDisplay, within
from appliance.standalone import StandaloneLoop
from tests.conftest import image_bytes

CONFIGURED = (480, 270)  # the box's display.width x display.height: a landscape screen


@pytest.fixture
def loop(services, tmp_path):
    """The gallery loop on a kiosk display of CONFIGURED size, one still picture, past its
    status card."""
    folder = tmp_path / "camera"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(image_bytes((200, 40, 40), size=(96, 64)))
    services.screen = KioskDisplay(CONFIGURED)
    loop = StandaloneLoop(services, FolderCamera(str(folder), 1e9), services.screen)
    loop.status_until = 0.0
    return loop


def _frame(client) -> Image.Image:
    response = client.get("/v1/kiosk/frame.jpg")
    assert response.status_code == 200, response.data
    return Image.open(io.BytesIO(response.data))


def _watch(client, query: str):
    """An open event stream (the page's), as the page opens it."""
    response = client.get(f"/v1/events{query}", buffered=False)
    assert response.status_code == 200, response.data
    return response


def test_a_portrait_page_gets_portrait_frames_while_it_is_open(client, loop):
    loop.tick()
    assert _frame(client).size == CONFIGURED
    stream = _watch(client, "?width=270&height=480")
    assert loop.tick() is not None  # the same picture, drawn again for the new shape
    assert _frame(client).size == (270, 480)
    stream.close()
    loop.tick()
    assert _frame(client).size == CONFIGURED  # the page went: the configured screen again


def test_the_newest_page_wins_and_the_older_one_takes_over_when_it_goes(client, loop):
    older = _watch(client, "?width=400&height=300")
    newer = _watch(client, "?width=300&height=400")
    loop.tick()
    assert _frame(client).size == (300, 400)
    newer.close()
    loop.tick()
    assert _frame(client).size == (400, 300)
    older.close()


def test_a_visitors_page_cannot_reshape_the_installations_screen(client, loop):
    # The box's own browser (loopback) shows the wall; a phone on the network opens the
    # stream later with a screen of another shape (no token is set here, so it is admitted).
    def phone():
        response = client.get("/v1/events?width=270&height=480", buffered=False,
                              environ_base={"REMOTE_ADDR": "192.0.2.7"})
        assert response.status_code == 200, response.data
        return response

    wall = _watch(client, "?width=400&height=300")
    visitor = phone()
    loop.tick()
    assert _frame(client).size == (400, 300)  # the wall's shape, not the newer phone's
    visitor.close()
    wall.close()
    visitor = phone()  # with no page on the box itself, a page from the network is drawn for
    loop.tick()
    assert _frame(client).size == (270, 480)
    visitor.close()


def test_a_bigger_screen_is_drawn_within_the_configured_pixels(client, loop):
    stream = _watch(client, "?width=3840&height=2160")  # a stranger asks for 4K frames
    loop.tick()
    assert _frame(client).size == CONFIGURED  # same shape, the owner's pixel count
    stream.close()
    stream = _watch(client, "?width=1080&height=1920")
    loop.tick()
    width, height = _frame(client).size
    assert width * height <= CONFIGURED[0] * CONFIGURED[1] and (width, height) == (270, 480)
    stream.close()


@pytest.mark.parametrize("query, message", [
    ("?width=100000&height=800",
     "width must be a whole number of pixels from 120 to 7680, not '100000'"),
    ("?width=480&height=7681",
     "height must be a whole number of pixels from 120 to 7680, not '7681'"),
    ("?width=480&height=119",
     "height must be a whole number of pixels from 120 to 7680, not '119'"),
    ("?width=-480&height=800",
     "width must be a whole number of pixels from 120 to 7680, not '-480'"),
    ("?width=4.5e2&height=800",
     "width must be a whole number of pixels from 120 to 7680, not '4.5e2'"),
    ("?width=" + "9" * 5000 + "&height=800",
     "width must be a whole number of pixels from 120 to 7680, not '99999999999999999999'"),
    ("?width=480", "width was given without height: give both, or neither"),
    ("?height=800", "height was given without width: give both, or neither"),
    ("?width=120&height=7680",
     "a screen of 120x7680 is out of range: its longer side can be at most 4 times its shorter"),
])
def test_absurd_sizes_are_400_naming_the_parameter(client, loop, query, message):
    response = client.get(f"/v1/events{query}")
    assert response.status_code == 400
    assert response.get_json()["error"]["message"] == message
    assert loop.display.size == CONFIGURED
    _watch(client, "").close()  # the refusal held no stream slot
    _watch(client, "").close()


def test_a_frame_drawn_for_another_shape_is_shown_whole():
    display = KioskDisplay((270, 480))
    display.show(Image.new("RGB", (480, 270), (255, 255, 255)))  # drawn before a resize
    frame = Image.open(io.BytesIO(display.frame))
    assert frame.size == (270, 152)  # scaled down whole, not cropped to the new shape


def test_within_keeps_the_shape_and_never_scales_up():
    assert within((480, 800), 1920 * 1080) == (480, 800)
    assert within((3840, 2160), 1920 * 1080) == (1920, 1080)
    assert within((1170, 2532), 1920 * 1080) == (978, 2118)
