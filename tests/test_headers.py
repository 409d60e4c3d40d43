"""HARDENING row 36: manifest text in response headers. Any text makes valid header values
(ASCII, one line, bounded, the exact text in RFC 8187's encoding beside it), and image
results answer 200 whatever the model's author, licence and version hold: through Flask's
test client, a real waitress socket, and a live `appliance serve`."""

import base64
import dataclasses
import io
import json
import re
import threading
from urllib.parse import unquote

import numpy as np
import pytest
from PIL import Image

from appliance import imaging
from appliance.api.headers import MAX_CHARS, text_headers
from tests import models as tiny
from tests.conftest import image_bytes
from tools.live_server import LiveServer, post_image

CREDIT = {"author": "张伟 and Zoë Ångström", "source": "tests/models.py",
          "license": "CC BY-SA 4.0 — see LICENSE"}
LONG_AUTHOR = "张" + "A" * 200_000  # the attack run's 200 KB author
ASCII_VALUE = re.compile(r"[\x20-\x7e]*")
EXT_VALUE = re.compile(r"UTF-8''(%[0-9A-F]{2}|[A-Za-z0-9!#$&+\-.^_`|~])*")  # RFC 8187
PHOTO = image_bytes((255, 0, 0), size=(60, 30), fmt="PNG")


def _exact(headers, name: str) -> str:
    """What a client reads: the RFC 8187 value when there is one, else the plain one."""
    extended = headers.get(f"{name}*")
    return unquote(extended.removeprefix("UTF-8''")) if extended else headers[name]


def _valid(headers: dict[str, str]) -> None:
    for name, value in headers.items():
        assert ASCII_VALUE.fullmatch(value), (name, value[:80])
        if name.endswith("*"):
            assert EXT_VALUE.fullmatch(value) and len(value) <= MAX_CHARS * 12
        else:
            assert len(value) <= MAX_CHARS


# -- the helper ----------------------------------------------------------------------------

def test_row36_plain_ascii_is_one_header_unchanged():
    assert text_headers("X-Model-License", "CC0-1.0") == {"X-Model-License": "CC0-1.0"}


def test_row36_non_latin_text_has_an_ascii_fallback_and_the_exact_text():
    headers = text_headers("X-Model-Author", "张伟 and Zoë — Ångström")
    assert headers == {
        "X-Model-Author": "?? and Zoe - Angstrom",
        "X-Model-Author*": "UTF-8''%E5%BC%A0%E4%BC%9F%20and%20Zo%C3%AB%20%E2%80%94%20"
                           "%C3%85ngstr%C3%B6m"}
    assert _exact(headers, "X-Model-Author") == "张伟 and Zoë — Ångström"


def test_row36_newlines_and_control_characters_become_spaces():
    assert text_headers("X-Model", "sketch 1.0\r\nSet-Cookie: x=1\x00\x1b") == {
        "X-Model": "sketch 1.0 Set-Cookie: x=1"}


def test_row36_a_200kb_text_is_bounded():
    headers = text_headers("X-Model-Author", LONG_AUTHOR)
    _valid(headers)
    assert headers["X-Model-Author"] == "?" + "A" * (MAX_CHARS - 4) + "..."
    assert _exact(headers, "X-Model-Author") == "张" + "A" * (MAX_CHARS - 4) + "..."


def test_row36_any_characters_make_valid_header_values():
    rng = np.random.default_rng(36)
    for _ in range(200):
        points = rng.integers(0, 0x110000, rng.integers(0, 400))
        headers = text_headers("X-Model-Author", "".join(map(chr, points)))
        _valid(headers)
        if "X-Model-Author*" in headers:  # the exact text is UTF-8 that decodes
            unquote(headers["X-Model-Author*"][7:], errors="strict")


# -- results over HTTP ---------------------------------------------------------------------

@pytest.fixture
def models_dir(tmp_path):
    """One image-to-image bundle whose manifest has non-Latin credit and version (all within
    the schema's caps); conftest's settings, services, app and client serve it."""
    folder = tmp_path / "models"
    tiny.write_bundle(folder, "hostile", "image-to-image", version="1.0-β", attribution=CREDIT)
    return folder


@pytest.fixture
def beyond_schema(services):
    """The loaded manifest as a bundle written before the schema's caps (or with them raised
    later) would have it: a 200 KB author and a newline in the version."""
    runner = services.registry.get("hostile")
    manifest = dataclasses.replace(runner.bundle.manifest, version="1.0\nbeta",
                                   attribution={**CREDIT, "author": LONG_AUTHOR})
    runner.bundle = dataclasses.replace(runner.bundle, manifest=manifest)


def _file_credit(data: bytes) -> dict[str, str]:
    with Image.open(io.BytesIO(data)) as image:
        if image.format == "PNG":
            return dict(image.text)
        comment = image.info["comment"].decode("utf-8")
        return dict(part.split(": ", 1) for part in comment.split("; "))


def _check_manifest_credit(status: int, headers, data: bytes) -> None:
    assert status == 200
    _valid({k: v for k, v in headers.items() if k.startswith("X-Model")})
    assert headers["X-Model"] == "hostile 1.0-?"
    assert _exact(headers, "X-Model") == "hostile 1.0-β"
    assert headers["X-Model-License"] == "CC BY-SA 4.0 - see LICENSE"
    assert _exact(headers, "X-Model-License") == CREDIT["license"]
    assert headers["X-Model-Author"] == "?? and Zoe Angstrom"
    assert _exact(headers, "X-Model-Author") == CREDIT["author"]
    credit = _file_credit(data)
    assert {k.lower(): v for k, v in credit.items()} == CREDIT


def _check_beyond_schema(status: int, headers, data: bytes) -> None:
    assert status == 200
    _valid({k: v for k, v in headers.items() if k.startswith("X-Model")})
    assert headers["X-Model"] == "hostile 1.0 beta"
    assert headers["X-Model-Author"].endswith("...")
    assert _exact(headers, "X-Model-License") == CREDIT["license"]
    credit = {k.lower(): v for k, v in _file_credit(data).items()}
    assert credit["author"].startswith("张AAAA")
    assert credit["author"].endswith(imaging.SHORTENED)
    assert credit["license"] == CREDIT["license"]


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_row36_image_results_carry_non_latin_credit(client, fmt):
    response = client.post(f"/v1/models/hostile/infer?format={fmt}", data=PHOTO)
    _check_manifest_credit(response.status_code, response.headers, response.data)


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_row36_image_results_beyond_the_schema_never_fail(client, beyond_schema, fmt):
    response = client.post(f"/v1/models/hostile/infer?format={fmt}", data=PHOTO)
    _check_beyond_schema(response.status_code, response.headers, response.data)


def test_row36_json_results_beyond_the_schema_never_fail(client, beyond_schema):
    response = client.post("/v1/models/hostile/infer?format=json", data=PHOTO)
    assert response.status_code == 200
    body = response.get_json()
    assert body["attribution"]["author"] == LONG_AUTHOR  # JSON carries any text whole
    assert body["version"] == "1.0\nbeta"
    credit = _file_credit(base64.b64decode(body["image"]))
    assert credit["Author"].endswith(imaging.SHORTENED)


# -- the same over real sockets --------------------------------------------------------------

@pytest.fixture
def waitress_url(app):
    """The app behind a real waitress server on a loopback port, in this process (so the
    manifest can be one no schema would load)."""
    from waitress import create_server, wasyncore

    server = create_server(app, host="127.0.0.1", port=0, threads=2)
    stop = threading.Event()

    def loop():
        while not stop.is_set():
            wasyncore.loop(timeout=0.05, map=server._map, count=1)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}"
    stop.set()
    thread.join(5)
    server.close()


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["png", "jpeg", "json"])
def test_row36_beyond_the_schema_over_a_real_socket(beyond_schema, waitress_url, fmt):
    status, data, headers = post_image(f"{waitress_url}/v1/models/hostile/infer?format={fmt}",
                                       PHOTO, "photo.png")
    if fmt == "json":
        assert status == 200 and json.loads(data)["attribution"]["author"] == LONG_AUTHOR
    else:
        _check_beyond_schema(status, headers, data)


@pytest.mark.slow
def test_row36_live_server_answers_every_format(models_dir, tmp_path):
    with LiveServer(models_dir, tmp_path / "state") as live:
        live.wait_ready()
        for fmt in ("png", "jpeg"):
            status, data, headers = post_image(
                f"{live.url}/v1/models/hostile/infer?format={fmt}", PHOTO, "photo.png")
            _check_manifest_credit(status, headers, data)
        status, data, _ = post_image(f"{live.url}/v1/models/hostile/infer?format=json",
                                     PHOTO, "photo.png")
        assert status == 200 and json.loads(data)["attribution"] == CREDIT
