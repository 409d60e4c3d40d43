"""The upload page in real headless Chromium (Debian's chromium package, driven by Playwright)
against a real server process."""


import pytest

from tests.browser import live_page
from tests.conftest import image_bytes
from tools.live_server import LiveServer

pytestmark = pytest.mark.slow


@pytest.fixture
def page(models_dir, tmp_path):
    with live_page(models_dir, tmp_path / "state", (1100, 900)) as page:
        yield page


def test_cards_then_labels_for_a_dropped_image(page, tmp_path):
    page.wait_for_selector(".card[data-name='tiny-classify'][aria-checked='true']")
    assert page.locator(".card").count() == 4
    meta = page.locator(".card[data-name='tiny-classify'] .meta").inner_text()
    assert "8×8" in meta and "Test Author" in meta and "CC0-1.0" in meta
    photo = tmp_path / "blue.jpg"
    photo.write_bytes(image_bytes((0, 0, 255)))
    page.set_input_files("#file", str(photo))
    page.wait_for_selector(".pred")
    assert page.locator(".pred .row span").first.inner_text() == "blue"
    assert "inference" in page.locator("#timings").inner_text()
    assert page.locator("#curl").inner_text() == (
        f"curl -F image=@photo.jpg {page.live_url}/v1/models/tiny-classify/infer")
    page.screenshot(path=str(tmp_path / "upload-page.png"), full_page=True)


def test_image_result_shown_and_downloadable(page, tmp_path):
    photo = tmp_path / "red.png"
    photo.write_bytes(image_bytes((255, 0, 0), fmt="PNG"))
    page.wait_for_selector(".card[data-name='tiny-negative']")
    page.click(".card[data-name='tiny-negative']")
    page.set_input_files("#file", str(photo))
    image = page.wait_for_selector("#output-image")
    assert image.get_attribute("src").startswith("data:image/png;base64,")
    assert page.locator("a.download").get_attribute("download") == "tiny-negative.png"
    assert page.locator("#curl").inner_text().endswith("tiny-negative/infer -o result.png")


def test_errors_are_shown_in_words(page, tmp_path):
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"this is not an image")
    page.wait_for_selector(".card[aria-checked='true']")
    page.set_input_files("#file", str(junk))
    alert = page.wait_for_selector("[role=alert]")
    assert "not an accepted image format" in alert.inner_text()


def test_detections_drawn_over_the_photo(page, tmp_path):
    photo = tmp_path / "white.png"
    photo.write_bytes(image_bytes((255, 255, 255), size=(64, 48), fmt="PNG"))
    page.wait_for_selector(".card[data-name='tiny-faces']")
    page.click(".card[data-name='tiny-faces']")
    page.set_input_files("#file", str(photo))
    canvas = page.wait_for_selector("#output-boxes")
    assert canvas.get_attribute("aria-label") == "1 found"
    page.wait_for_function("document.getElementById('output-boxes').width === 64")
    # the box's left edge is drawn in the detector's orange at x = 16
    pixel = page.evaluate("Array.from(document.getElementById('output-boxes')"
                          ".getContext('2d').getImageData(16, 24, 1, 1).data)")
    assert pixel[0] > 200 and pixel[2] < 100


def test_kiosk_page_updates_live(models_dir, tmp_path):
    camera = tmp_path / "camera"
    camera.mkdir()
    for i, colour in enumerate([(255, 0, 0), (0, 0, 255)]):
        (camera / f"{i}.png").write_bytes(image_bytes(colour, fmt="PNG"))
    env = {"APPLIANCE_STANDALONE_ENABLED": "true", "APPLIANCE_STANDALONE_MAX_FPS": "5",
           "APPLIANCE_CAMERA_KIND": "folder", "APPLIANCE_CAMERA_PATH": str(camera),
           "APPLIANCE_CAMERA_INTERVAL_S": "0.3", "APPLIANCE_DISPLAY_KIND": "kiosk",
           "APPLIANCE_DISPLAY_WIDTH": "480", "APPLIANCE_DISPLAY_HEIGHT": "270"}
    with live_page(models_dir, tmp_path / "state", (480, 270), "/kiosk", env) as page:
        page.wait_for_function("Number(document.getElementById('screen').dataset.sequence) > 0")
        first = int(page.get_attribute("#screen", "data-sequence"))
        page.wait_for_function(
            f"Number(document.getElementById('screen').dataset.sequence) > {first + 2}")
        page.wait_for_function("document.getElementById('screen').naturalWidth === 480")


# -- the vision tasks' renderers --------------------------------------------------------------

@pytest.fixture
def vision_page(models_dir, tmp_path):
    """The upload page of a box that also serves tiny-segment, tiny-pose and tiny-text."""
    from tests import models as tiny

    tiny.write_bundle(models_dir, "tiny-segment", "segment")
    tiny.write_bundle(models_dir, "tiny-pose", "pose",
                      input={**tiny.manifest("x", "pose")["input"], "dynamic_batch": False})
    tiny.ocr_bundle(models_dir, "tiny-text")
    with live_page(models_dir, tmp_path / "state", (1100, 900)) as page:
        yield page


def _half_red(tmp_path, size=(64, 48)):
    """A PNG whose left half is red and right half black: tiny-segment's 'person' is red."""
    from PIL import Image

    image = Image.new("RGB", size, (0, 0, 0))
    image.paste((255, 0, 0), (0, 0, size[0] // 2, size[1]))
    path = tmp_path / "half.png"
    image.save(path)
    return path


def _pixel(page, canvas: str, x: int, y: int) -> list[int]:
    return page.evaluate(f"Array.from(document.getElementById('{canvas}').getContext('2d')"
                         f".getImageData({x}, {y}, 1, 1).data)")


def test_cutout_on_a_checkerboard_then_on_a_chosen_backdrop(vision_page, tmp_path):
    page = vision_page
    page.wait_for_selector(".card[data-name='tiny-segment']")
    page.click(".card[data-name='tiny-segment']")
    assert page.locator("#curl").inner_text().endswith("tiny-segment/infer -o result.png")
    page.set_input_files("#file", str(_half_red(tmp_path)))
    cut = page.wait_for_selector(".checker #output-image")
    assert cut.get_attribute("src").startswith("data:image/png;base64,")
    assert "the cut-out" in cut.get_attribute("alt")
    assert page.locator("a.download").first.get_attribute("download") == "tiny-segment.png"
    assert "covers" in page.locator("#output p.muted").inner_text()
    backdrop = tmp_path / "blue.png"
    backdrop.write_bytes(image_bytes((0, 0, 255), size=(120, 80), fmt="PNG"))
    page.set_input_files("#backdrop-file", str(backdrop))
    page.wait_for_selector("#output-composite:not([hidden])")
    page.wait_for_selector("#composite-download:not([hidden])")
    assert page.get_attribute("#composite-download", "href").startswith("blob:")
    assert page.evaluate("document.getElementById('output-composite').width") == 120
    # the red half stands centred on the backdrop's bottom edge; the rest stays blue
    assert _pixel(page, "output-composite", 60, 75)[:3] == [255, 0, 0]
    assert _pixel(page, "output-composite", 5, 5)[:3] == [0, 0, 255]
    assert page.errors == []


def test_nothing_to_cut_out_is_said(vision_page, tmp_path):
    page = vision_page
    page.wait_for_selector(".card[data-name='tiny-segment']")
    page.click(".card[data-name='tiny-segment']")
    black = tmp_path / "black.png"
    black.write_bytes(image_bytes((0, 0, 0), fmt="PNG"))
    page.set_input_files("#file", str(black))
    page.wait_for_selector(".checker #output-image")
    assert page.locator("#output p.muted").inner_text() == "Nothing to cut out was found."


def test_skeleton_drawn_over_the_photo(vision_page, tmp_path):
    page = vision_page
    page.wait_for_selector(".card[data-name='tiny-pose']")
    page.click(".card[data-name='tiny-pose']")
    white = tmp_path / "white.png"
    white.write_bytes(image_bytes((255, 255, 255), size=(64, 48), fmt="PNG"))
    page.set_input_files("#file", str(white))
    canvas = page.wait_for_selector("#output-pose")
    assert canvas.get_attribute("aria-label") == "1 person found"
    page.wait_for_function("document.getElementById('output-pose').width === 64")
    # tiny-pose's ninth keypoint is the middle of the picture: an orange joint there
    red, _, blue, _ = _pixel(page, "output-pose", 32, 24)
    assert red > 200 and blue < 100
    assert _pixel(page, "output-pose", 60, 4)[:3] == [255, 255, 255]  # off the skeleton
    black = tmp_path / "black.png"
    black.write_bytes(image_bytes((0, 0, 0), fmt="PNG"))
    page.set_input_files("#file", str(black))  # no keypoint is sure of a black picture
    page.wait_for_selector("#output-pose[aria-label='Nobody found']")
    assert page.errors == []


def _text_picture(tmp_path, lines: list[str]):
    """A PNG of tiny-text's colour-bar lines (see tests/models.py) and each line's band."""
    from tests import models as tiny

    picture, bands = tiny.ocr_picture(lines, size=(320, 200))
    path = tmp_path / "text.png"
    picture.save(path)
    return path, bands


def _choose_text(page):
    page.wait_for_selector(".card[data-name='tiny-text']")
    page.click(".card[data-name='tiny-text']")


def test_read_text_beside_its_boxes_with_a_copy_button(vision_page, tmp_path):
    page = vision_page
    _choose_text(page)
    path, bands = _text_picture(tmp_path, ["YMCK", "KKYY"])
    page.set_input_files("#file", str(path))
    text = page.wait_for_selector("#output-text")
    assert text.inner_text() == "YMCK\nKKYY"
    assert page.get_attribute("#output-text-boxes", "aria-label") == "2 lines of text found"
    page.wait_for_function("document.getElementById('output-text-boxes').width === 320")
    # The first line's box is drawn around its band, so in the white above it, in the middle
    # of the line, one row is the accent colour; the band's own bars are left as they are.
    x0, y0, x1, _ = bands[0]
    above = [_pixel(page, "output-text-boxes", (x0 + x1) // 2, y) for y in range(y0)]
    assert any(red > 200 and blue < 100 for red, _, blue, _ in above), above
    assert _pixel(page, "output-text-boxes", x0 + 36, y0 + 12)[:3] == [255, 255, 0]  # "Y"
    # plain http to a box is no secure context: no clipboard, so the text is selected
    page.evaluate("Object.defineProperty(navigator, 'clipboard', {value: undefined})")
    page.click("#copy-text")
    page.wait_for_selector(".tools [role=status]:has-text('Selected')")
    assert page.evaluate("String(window.getSelection())") == "YMCK\nKKYY"
    assert page.errors == []


def test_no_text_is_said(vision_page, tmp_path):
    page = vision_page
    _choose_text(page)
    white = tmp_path / "white.png"
    white.write_bytes(image_bytes((255, 255, 255), size=(64, 48), fmt="PNG"))
    page.set_input_files("#file", str(white))
    assert page.wait_for_selector(".read.empty").inner_text() == "No text found."
    assert page.get_attribute("#output-text-boxes", "aria-label") == "0 lines of text found"
    assert page.locator("#copy-text").count() == 0
    assert page.errors == []


def test_the_token_field_only_on_a_box_that_asks_for_one(page, models_dir, tmp_path):
    page.wait_for_selector(".card[aria-checked='true']")
    assert not page.locator("#token-box").is_visible()  # this box asks for none
    token = "an-inference-token-of-some-length"
    env = {"APPLIANCE_AUTH_INFER_TOKEN": token}
    with LiveServer(models_dir, tmp_path / "locked", env=env) as live:
        live.wait_ready()
        page.goto(live.url + "/")
        page.wait_for_selector("#token-box[open]")
        assert "needs the inference token" in page.locator("#models [role=alert]").inner_text()
        page.fill("#token", token)
        page.dispatch_event("#token", "change")
        page.wait_for_selector(".card[aria-checked='true']")
        assert page.locator("#token-box").is_visible()  # still there to change it


def test_a_sketch_with_its_line_weight_asked_again(models_dir, tmp_path):
    from tests import models as tiny
    from tests.test_edges import _boundary_photo

    tiny.write_bundle(models_dir, "tiny-edges", "edges",
                      input={**tiny.manifest("x", "edges")["input"], "size": [32, 32]})
    photo = tmp_path / "boundary.png"
    photo.write_bytes(_boundary_photo())
    with live_page(models_dir, tmp_path / "state", (1100, 900)) as page:
        page.wait_for_selector(".card[data-name='tiny-edges']")
        page.click(".card[data-name='tiny-edges']")
        page.set_input_files("#file", str(photo))
        first = page.wait_for_selector("#output-image").get_attribute("src")
        assert page.locator("#line").input_value() == "2"
        assert page.locator("#curl").inner_text().endswith("tiny-edges/infer?line=2 -o result.png")
        page.select_option("#line", "5")
        page.wait_for_function("(first) => { const image = document.getElementById("
                               "'output-image'); return image && image.src !== first; }",
                               arg=first)
        assert page.locator("#line").input_value() == "5"
        assert page.locator("#curl").inner_text().endswith("infer?line=5 -o result.png")
        assert _dark_columns(page) == 5 and _dark_columns(page, first) == 2


def _dark_columns(page, src: str | None = None) -> int:
    """How many pixels of the drawing's middle row are dark (the line's width)."""
    import base64
    import io

    import numpy as np
    from PIL import Image

    src = src or page.get_attribute("#output-image", "src")
    image = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).convert("L")
    return int((np.asarray(image)[image.height // 2] < 128).sum())
