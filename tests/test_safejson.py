"""Row 12: JSON bombs on the JSON route get 400, not 500."""

import base64
import json

import pytest

from appliance import safejson
from appliance.errors import BadRequest
from tests.conftest import image_bytes


@pytest.mark.parametrize(("body", "message"), [
    (b"[" * 100_000 + b"]" * 100_000, "nested deeper than 32"),
    (b'{"image": NaN}', "NaN is not JSON"),
    (b'{"a": ' + b"9" * 5000 + b"}", "has 5000 digits"),
    (b'{"a": 1.' + b"5" * 5000 + b"}", "characters; at most 64"),
    (b"\xff\xfe", "not UTF-8"),
    (b"{oops", "not valid JSON"),
])
def test_bombs_and_junk_are_bad_requests(body, message):
    with pytest.raises(BadRequest, match=message):
        safejson.loads(body)


def test_brackets_inside_strings_do_not_count():
    assert safejson.loads(json.dumps({"a": "[[[[" * 100}).encode())["a"].startswith("[[")


@pytest.mark.parametrize("body", [b"[" * 100_000, b'{"image": NaN}',
                                  b'{"image": ' + b"1" * 5000 + b"}"])
def test_row12_json_bombs_on_the_infer_route_are_400(client, body):
    response = client.post("/v1/models/tiny-classify/infer", data=body,
                           content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "bad_request"


def test_base64_json_images_are_served(client):
    body = {"image": base64.b64encode(image_bytes((0, 0, 255))).decode()}
    response = client.post("/v1/models/tiny-classify/infer", json=body)
    assert response.get_json()["predictions"][0]["label"] == "blue"
    bad = client.post("/v1/models/tiny-classify/infer", json={"image": "***"})
    assert bad.status_code == 400 and "not valid base64" in bad.get_json()["error"]["message"]
    shape = client.post("/v1/models/tiny-classify/infer", json=[1, 2])
    assert shape.status_code == 400


@pytest.mark.parametrize(("text", "value"), [
    (r'{"a": "\"[[[["}', '"[[[['), (r'{"a": "\\"}', "\\"), (r'["\\\\", [1]]', None)])
def test_escapes_inside_strings(text, value):
    parsed = safejson.loads(text.encode())
    if value is not None:
        assert parsed["a"] == value


def test_escaped_quotes_do_not_hide_nesting():
    # The string ends at the second quote; the brackets after it count.
    body = ('{"a": "\\\\", "b": ' + "[" * 40 + "]" * 40 + "}").encode()
    with pytest.raises(BadRequest, match="nested deeper"):
        safejson.loads(body)


def test_escaped_quote_keeps_the_string_open():
    body = ('{"a": "\\"' + "[" * 100 + '", "b": [1]}').encode()
    assert safejson.loads(body)["b"] == [1]


def test_row12_escapes_cost_linear_time():
    # 19 MB of backslash-quote pairs took 2.9 s of CPU before the 400 with the old walk in
    # Python; the check is now a few passes in C (about 0.2 s here). The bound is loose on
    # purpose: it catches a quadratic or per-character Python walk, not a slow machine.
    import time

    body = b'["' + b'\\"' * 9_500_000 + b'"]'
    started = time.process_time()
    assert len(safejson.loads(body)[0]) == 9_500_000
    assert time.process_time() - started < 1.5


def test_a_body_of_millions_of_values_is_refused_before_parsing():
    # 20 MB of empty lists parsed to 810 MB of Python objects before the 400.
    body = b'{"inputs": [{"data": [' + b"[]," * 6_000_000 + b"[]]}]}"
    with pytest.raises(BadRequest, match="the JSON holds about 12000005 values; at most 2000000"):
        safejson.loads(body)
    assert len(safejson.loads(b"[" + b"1.5," * 600_000 + b"1]")) == 600_001
