"""The upload page's teach panel (appliance/web/teach.js) in real headless Chromium against
a real server process that learns with the real lite0-embed, on crops of scikit-image's
photographs: a taught model made, photos dropped on its classes, counts and thumbnails,
the honest accuracy, an example and a class deleted, and the model answering on the page."""

import contextlib
import shutil
import time

import pytest
from PIL import Image

from appliance import config
from tests.browser import live_page
from tests.conftest import ADMIN
from tools.bench.teach import crops

pytestmark = [pytest.mark.slow, pytest.mark.default_models]
EMBEDDER = config.CHECKOUT / "models" / "lite0-embed"


@pytest.fixture
def teach_page(models_dir, tmp_path):
    """The upload page of a box with lite0-embed, its admin token typed in the panel."""
    with _teach_page(models_dir, tmp_path) as page:
        yield page


@contextlib.contextmanager
def _teach_page(models_dir, tmp_path, env=None):
    if not (EMBEDDER / "manifest.json").is_file():
        pytest.skip("lite0-embed is not built: run `make models`")
    shutil.copytree(EMBEDDER, models_dir / "lite0-embed")
    state = tmp_path / "state"
    state.mkdir()
    (state / "admin-token").write_text(ADMIN + "\n")
    with live_page(models_dir, state, (1100, 1400), env=env) as page:
        page.wait_for_selector(".card[aria-checked='true']")
        page.fill("#admin-token", ADMIN)
        yield page


def _photos(tmp_path, name: str, count: int, seed: int) -> list[str]:
    paths = []
    for i, data in enumerate(crops(name, count, seed)):
        path = tmp_path / f"{name}-{seed}-{i}.jpg"
        path.write_bytes(data)
        paths.append(str(path))
    return paths


def _open(page, name: str, classes: str) -> None:
    page.fill("#teach-name", name)
    page.fill("#teach-class-names", classes)
    page.click("#teach-open")


def _drop(page, cls: str, paths: list[str], count: int) -> None:
    card = f".teach-class[data-class='{cls}']"
    page.set_input_files(f"{card} input[type=file]", paths)
    page.wait_for_selector(f"{card}[data-count='{count}']")


def test_teach_a_model_on_the_page_then_it_answers(teach_page, tmp_path):
    page = teach_page
    _open(page, "photos", "chelsea, rocket, coffee, Rocket")
    page.wait_for_selector("#teach-status:has-text('photos is new')")
    assert page.locator(".teach-class").count() == 3  # Rocket is rocket
    _drop(page, "chelsea", _photos(tmp_path, "chelsea", 1, 0), 1)
    assert page.locator(".card[data-name='photos']").count() == 0  # one class: not yet
    _drop(page, "rocket", _photos(tmp_path, "rocket", 1, 1), 1)
    page.wait_for_selector(".card[data-name='photos'][aria-checked='true']")
    assert "one example per class" in page.locator("#teach-report .warning").first.inner_text()

    _drop(page, "chelsea", _photos(tmp_path, "chelsea", 3, 10), 4)
    _drop(page, "rocket", _photos(tmp_path, "rocket", 3, 11), 4)
    _drop(page, "coffee", _photos(tmp_path, "coffee", 4, 12), 4)
    card = ".teach-class[data-class='coffee']"
    assert page.locator(f"{card} .count").inner_text() == "4 examples"
    # The thumbnails come after the count (their ids are fetched once it shows).
    page.wait_for_function(f"document.querySelectorAll(\"{card} .examples li\").length >= 4")
    assert page.locator(f"{card} .examples li").count() == 4
    page.wait_for_function(f"document.querySelector(\"{card} img.latest\").naturalWidth > 0")
    assert page.get_attribute(f"{card} img.latest", "src").startswith("blob:")
    accuracy = page.locator("#teach-accuracy").inner_text()
    assert accuracy.startswith("Accuracy on its own examples, each left out in turn: ")
    assert "from 12 photos" in accuracy
    assert page.locator(".teach-scores li").count() == 3
    page.screenshot(path=str(tmp_path / "teach-panel.png"), full_page=True)

    page.click(".teach-class[data-class='chelsea'] .remove-example >> nth=0")
    page.wait_for_selector(".teach-class[data-class='chelsea'][data-count='3']")
    assert "from 11 photos" in page.locator("#teach-accuracy").inner_text()
    page.on("dialog", lambda dialog: dialog.accept())
    page.click(".teach-class[data-class='coffee'] .remove-class")
    page.wait_for_selector("#teach-accuracy:has-text('from 7 photos')")
    assert page.locator(".teach-class").count() == 2

    right = 0
    page.click(".card[data-name='photos']")
    for k, path in enumerate(_photos(tmp_path, "rocket", 2, 100) +
                             _photos(tmp_path, "chelsea", 2, 101)):
        page.evaluate("document.getElementById('output').textContent = ''")
        page.set_input_files("#file", path)
        page.wait_for_selector(".pred")
        right += page.locator(".pred .row span").first.inner_text() == \
            ("rocket" if k < 2 else "chelsea")
    assert right >= 3
    assert page.errors == []


def test_a_wrong_token_and_a_file_that_is_not_a_photo_are_said_in_words(teach_page, tmp_path):
    page = teach_page
    page.fill("#admin-token", "not-the-token-at-all")
    _open(page, "photos", "a, b")
    alert = page.wait_for_selector("#teach-status[role=alert]")
    assert alert.inner_text() == ("The admin token is missing or wrong: it is in "
                                  "STATE_DIR/admin-token on the box")
    page.fill("#admin-token", ADMIN)
    _open(page, "photos", "cats")
    assert "two or more classes" in page.wait_for_selector(
        "#teach-status[role=alert]").inner_text()
    _open(page, "photos", "cats, dogs")
    page.wait_for_selector(".teach-class[data-class='dogs']")
    page.fill("#teach-class-names", "birds, Dogs")
    page.click("#add-class")
    assert page.locator(".teach-class").count() == 3  # Dogs is dogs
    junk = tmp_path / "notes.jpg"
    junk.write_bytes(b"these are my notes, not a photo")
    page.click("#teach-screen")  # this box runs no screen loop
    assert "start it with --standalone" in page.wait_for_selector(
        "#teach-status[role=alert]").inner_text()
    page.set_input_files(".teach-class[data-class='cats'] input[type=file]", str(junk))
    alert = page.wait_for_selector("#teach-status[role=alert]:has-text('notes.jpg')")
    assert "not an accepted image format" in alert.inner_text()
    assert page.get_attribute(".teach-class[data-class='cats']", "data-count") == "0"
    assert page.errors == []


def test_the_box_screen_teaches_what_the_page_opened(models_dir, tmp_path):
    camera, screen = tmp_path / "camera", tmp_path / "screen"
    camera.mkdir()
    (camera / "door.jpg").write_bytes(crops("rocket", 1, 0)[0])
    env = {"APPLIANCE_STANDALONE_ENABLED": "true", "APPLIANCE_CAMERA_KIND": "folder",
           "APPLIANCE_CAMERA_PATH": str(camera), "APPLIANCE_DISPLAY_KIND": "file",
           "APPLIANCE_DISPLAY_PATH": str(screen), "APPLIANCE_DISPLAY_WIDTH": "320",
           "APPLIANCE_DISPLAY_HEIGHT": "180"}
    with _teach_page(models_dir, tmp_path, env) as page:
        _open(page, "door", "parcel, nothing")
        page.wait_for_selector(".teach-class[data-class='nothing']")
        page.click("#teach-screen")
        page.wait_for_selector("#teach-status:has-text(\"The box's screen teaches door now\")")
        deadline = time.monotonic() + 20
        while not _teach_screen_shown(screen):  # the classes' panel beside the camera
            assert time.monotonic() < deadline, "the teach screen never came up"
            time.sleep(0.05)
        assert page.errors == []


def _teach_screen_shown(screen) -> bool:
    frames = sorted(screen.glob("frame-*.png"))
    try:
        with Image.open(frames[-1]) as latest:
            return latest.convert("RGB").getpixel((300, 100)) == (24, 24, 27)
    except (IndexError, OSError):  # no frame yet, or one being replaced
        return False
