"""The upload page's "made here" card under each result and the owner's usage chart, in
real headless Chromium against a real server process (as tests/test_web.py)."""

import pytest

from tests.browser import live_page
from tests.conftest import ADMIN, image_bytes

pytestmark = pytest.mark.slow


@pytest.fixture
def page(models_dir, tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "admin-token").write_text(ADMIN + "\n")
    with live_page(models_dir, state, (1100, 900)) as page:
        yield page


def test_a_signed_picture_gets_its_made_here_card(page, tmp_path):
    pytest.importorskip("c2pa", reason="signing needs the provenance extra (c2pa-python)")
    photo = tmp_path / "red.png"
    photo.write_bytes(image_bytes((255, 0, 0), fmt="PNG"))
    page.wait_for_selector(".card[data-name='tiny-negative']")
    page.click(".card[data-name='tiny-negative']")
    page.set_input_files("#file", str(photo))
    page.wait_for_selector("#made-here-seal[data-state='valid']")
    card = page.locator("#made-here").inner_text()
    assert "Made here, by this model, by these people" in card
    assert "tiny-negative 0.0.1" in card and "Test Author" in card and "CC0-1.0" in card
    seal = page.locator("#made-here-seal").inner_text()
    assert seal.startswith("✓ Signed on ") and "made by tiny-negative 0.0.1" in seal


def test_labels_get_a_card_that_says_words_are_not_signed(page, tmp_path):
    photo = tmp_path / "blue.jpg"
    photo.write_bytes(image_bytes((0, 0, 255)))
    page.wait_for_selector(".card[data-name='tiny-classify'][aria-checked='true']")
    page.set_input_files("#file", str(photo))
    page.wait_for_selector("#made-here")
    card = page.locator("#made-here").inner_text()
    assert "tiny-classify 0.0.1" in card and "Test Author" in card
    assert "carries no signature" in card


def test_the_owner_sees_a_usage_chart_and_a_statement(page, tmp_path):
    photo = tmp_path / "blue.jpg"
    photo.write_bytes(image_bytes((0, 0, 255)))
    page.wait_for_selector(".card[data-name='tiny-classify'][aria-checked='true']")
    page.set_input_files("#file", str(photo))
    page.wait_for_selector(".pred")
    page.fill("#usage-token", "wrong-token-for-this-box")
    page.click("#usage-show")
    assert "wrong token" in page.wait_for_selector("#usage-out [role=alert]").inner_text()
    page.fill("#usage-token", ADMIN)
    page.click("#usage-show")
    page.wait_for_selector("#usage-chart .usage-bar")
    assert page.locator("#usage-chart .usage-bar").count() == 1
    assert page.locator("#usage-chart").get_attribute("aria-label") == \
        "1 requests answered over 1 days"
    rows = page.locator("#usage-totals tr").all_inner_texts()
    assert rows[1].split("\t")[:2] == ["tiny-classify statement", "1"]
    page.click("#usage-totals button.link")
    statement = page.wait_for_selector("#usage-statement:not([hidden])")
    page.wait_for_function("document.getElementById('usage-statement').textContent.length")
    assert "Your model `tiny-classify` answered 1 request on this box" in \
        statement.inner_text()
    page.screenshot(path=str(tmp_path / "usage.png"), full_page=True)
