"""The upload page in real headless Chromium (Debian's chromium package, driven by Playwright)
against a real server process."""

import shutil

import pytest

from tests.conftest import image_bytes
from tools.live_server import LiveServer

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# No background networking: Chromium must not try to reach anything but the box.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]


@pytest.fixture
def page(models_dir, tmp_path):
    if CHROMIUM is None:
        pytest.skip("needs Debian's chromium package (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs the test extra")
    with LiveServer(models_dir, tmp_path / "state") as live, \
            sync_api.sync_playwright() as playwright:
        live.wait_ready()
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1100, "height": 900})
        page = context.new_page()
        page.goto(live.url + "/")
        page.live_url = live.url
        yield page
        context.close()
        browser.close()


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
    if CHROMIUM is None:
        pytest.skip("needs Debian's chromium package (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs the test extra")
    camera = tmp_path / "camera"
    camera.mkdir()
    for i, colour in enumerate([(255, 0, 0), (0, 0, 255)]):
        (camera / f"{i}.png").write_bytes(image_bytes(colour, fmt="PNG"))
    env = {"APPLIANCE_STANDALONE_ENABLED": "true", "APPLIANCE_STANDALONE_MAX_FPS": "5",
           "APPLIANCE_CAMERA_KIND": "folder", "APPLIANCE_CAMERA_PATH": str(camera),
           "APPLIANCE_CAMERA_INTERVAL_S": "0.3", "APPLIANCE_DISPLAY_KIND": "kiosk",
           "APPLIANCE_DISPLAY_WIDTH": "480", "APPLIANCE_DISPLAY_HEIGHT": "270"}
    with LiveServer(models_dir, tmp_path / "state", env=env) as live, \
            sync_api.sync_playwright() as playwright:
        live.wait_ready()
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 480, "height": 270})
        page.goto(live.url + "/kiosk")
        page.wait_for_function("Number(document.getElementById('screen').dataset.sequence) > 0")
        first = int(page.get_attribute("#screen", "data-sequence"))
        page.wait_for_function(
            f"Number(document.getElementById('screen').dataset.sequence) > {first + 2}")
        page.wait_for_function("document.getElementById('screen').naturalWidth === 480")
        browser.close()
