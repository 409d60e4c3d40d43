"""The Open Inference Protocol: the real tritonclient against a live box, and every bad
request a 400 in the protocol's error format."""

import json

import numpy as np
import pytest

from appliance.tasks import preprocess
from tests.conftest import image_bytes
from tools.live_server import LiveServer

RED = np.zeros((1, 3, 8, 8), np.float32)
RED[0, 0] = 1.0


@pytest.fixture(scope="module")
def triton(tmp_path_factory):
    httpclient = pytest.importorskip("tritonclient.http", reason="needs the test extra")
    from tests import models as tiny

    folder = tmp_path_factory.mktemp("models")
    tiny.write_bundle(folder, "tiny-classify")
    with LiveServer(folder, tmp_path_factory.mktemp("state")) as live:
        live.wait_ready()
        yield httpclient, httpclient.InferenceServerClient(url=f"127.0.0.1:{live.port}"), live


@pytest.mark.slow
def test_server_and_model_metadata(triton):
    _, client, _ = triton
    assert client.is_server_live() and client.is_server_ready()
    assert client.get_server_metadata()["extensions"] == ["binary_tensor_data"]
    meta = client.get_model_metadata("tiny-classify")
    assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 3, 8, 8]}]
    assert meta["outputs"] == [{"name": "logits", "datatype": "FP32", "shape": [-1, 4]}]
    assert client.is_model_ready("tiny-classify")


@pytest.mark.slow
@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_infer_binary_and_json_match_v1(triton, binary):
    httpclient, client, live = triton
    tensor = httpclient.InferInput("input", list(RED.shape), "FP32")
    tensor.set_data_from_numpy(RED, binary_data=binary)
    wanted = httpclient.InferRequestedOutput("logits", binary_data=binary)
    logits = client.infer("tiny-classify", [tensor], outputs=[wanted]).as_numpy("logits")
    assert int(np.argmax(logits)) == 0
    from tools.live_server import post_image

    v1 = json.loads(post_image(f"{live.url}/v1/models/tiny-classify/infer",
                               image_bytes((255, 0, 0), fmt="PNG"))[1])
    scores = np.exp(logits[0] - logits[0].max())
    assert v1["predictions"][0]["score"] == pytest.approx(float(scores.max() / scores.sum()),
                                                          abs=1e-5)


@pytest.mark.slow
def test_an_error_through_the_client(triton):
    httpclient, client, _ = triton
    wrong = httpclient.InferInput("input", [1, 3, 8, 9], "FP32")
    wrong.set_data_from_numpy(np.zeros((1, 3, 8, 9), np.float32))
    with pytest.raises(Exception, match="does not fit the model's input"):
        client.infer("tiny-classify", [wrong])


def _infer(client, body, headers=None):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post("/v2/models/tiny-classify/infer", data=data,
                       headers=headers or {}, content_type="application/json")


def _request(**changes):
    tensor = {"name": "input", "shape": [1, 3, 8, 8], "datatype": "FP32",
              "data": RED.reshape(-1).tolist()}
    tensor.update(changes)
    return {"inputs": [tensor]}


def test_json_infer_with_the_flask_client(client):
    response = _infer(client, {**_request(), "id": "42", "outputs": [{"name": "logits"}]})
    body = response.get_json()
    assert body["id"] == "42" and body["model_name"] == "tiny-classify"
    (out,) = body["outputs"]
    assert out["shape"] == [1, 4] and int(np.argmax(out["data"])) == 0


def test_the_same_tensor_as_v1_preprocessing(client, services):
    from PIL import Image

    bundle = services.registry.get("tiny-classify").bundle
    tensor, _ = preprocess.prepare(Image.new("RGB", (8, 8), (0, 0, 255)),
                                   bundle.manifest.input)
    out = _infer(client, _request(data=tensor.reshape(-1).tolist())).get_json()["outputs"][0]
    assert int(np.argmax(out["data"])) == 2  # blue, as v1 answers for a blue image


@pytest.mark.parametrize(("body", "headers", "message"), [
    (b"[" * 100_000, None, "nested deeper"),
    (b'{"inputs": [{"name": "input", "shape": [1], "datatype": "FP32", "data": [NaN]}]}',
     None, "NaN is not JSON"),
    (_request(datatype="INT64"), None, "input input is FP32, not 'INT64'"),
    (_request(shape=[1, 3, 8, 4]), None, "does not fit the model's input"),
    (_request(data=[1.0, 2.0]), None, "2 values do not fill shape"),
    (_request(data=["x"] * 192), None, "tensor data must be numbers"),
    (_request(name="pixels"), None, "unknown input 'pixels'"),
    ({**_request(), "outputs": [{"name": "nope"}]}, None, "unknown output 'nope'"),
    ({"inputs": []}, None, "exactly one tensor"),
    (b'{"inputs": []}', {"Inference-Header-Content-Length": "999"}, "but the body has"),
    (b'{"inputs": [{"name": "input", "shape": [1, 3, 8, 8], "datatype": "FP32", '
     b'"parameters": {"binary_data_size": 64}}]}' + b"\0" * 64,
     {"Inference-Header-Content-Length": "114"}, "do not hold a [1, 3, 8, 8] tensor"),
], ids=["deep", "nan", "datatype", "shape", "length", "strings", "input-name",
        "output-name", "no-inputs", "header-too-long", "binary-size"])
def test_bad_requests_are_400_in_the_protocol_format(client, body, headers, message):
    response = _infer(client, body, headers)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert isinstance(error, str) and message in error


def test_unknown_model_is_404_and_readiness(client):
    assert client.get("/v2/models/nope").status_code == 404
    assert "installed models are" in client.get("/v2/models/nope").get_json()["error"]
    assert client.get("/v2/health/ready").get_json() == {"ready": True}
    assert client.get("/v2/models/tiny-classify/ready").get_json()["ready"] is True


def _v2(client, header: dict):
    return client.post("/v2/models/tiny-classify/infer", data=json.dumps(header),
                       content_type="application/json")


def _input(shape=(1, 3, 8, 8), **extra) -> dict:
    count = int(np.prod(shape)) if max(shape) < 1000 else 1
    return {"name": "input", "datatype": "FP32", "shape": list(shape), "data": [0.0] * count,
            **extra}


@pytest.mark.parametrize("header, message", [
    ({"inputs": [_input((2 ** 54 + 1, 3, 8, 8))]}, "one request carries at most"),
    ({"inputs": [_input((1, 3, 2 ** 40, 2 ** 40))]}, "one request carries at most"),
    ({"inputs": [_input()], "parameters": "binary"}, "'parameters' of the request must be"),
    ({"inputs": [_input()], "parameters": [1]}, "'parameters' of the request must be"),
    ({"inputs": [_input(parameters="x")]}, "'parameters' of input 'input' must be"),
    ({"inputs": [_input()], "outputs": [{"name": "logits", "parameters": [True]}]},
     "'parameters' of output 'logits' must be"),
    ({"inputs": [_input()], "outputs": ["logits"]}, "each entry of 'outputs' must be"),
    ({"inputs": [_input()], "outputs": {"name": "logits"}}, "'outputs' must be a list"),
])
def test_row37_bad_shapes_and_parameters_are_400_before_any_work(client, services, header,
                                                                   message):
    runner = services.registry.get("tiny-classify")
    runs = []
    runner.run = lambda tensor: runs.append(tensor)  # the model must not be reached
    response = _v2(client, header)
    assert response.status_code == 400, response.data
    assert message in response.get_json()["error"]
    assert runs == []


def test_a_tensor_the_graph_cannot_take_is_400_not_503(tmp_path, settings):
    """A model with free height and width whose graph needs 64 pixels: a client's 8x9 tensor
    passes the shape check and fails inside onnxruntime, about that input (the text
    detector does this for sizes that are not multiples of 32)."""
    from onnx import TensorProto, helper, numpy_helper

    from appliance.api import create_app
    from appliance.services import Services
    from tests import models as tiny
    from tests.conftest import ADMIN

    free = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, "h", "w"])
    out = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3])
    nodes = [helper.make_node("Reshape", ["input", "fixed"], ["square"]),
             helper.make_node("GlobalAveragePool", ["square"], ["pooled"]),
             helper.make_node("Flatten", ["pooled"], ["logits"])]
    fixed = numpy_helper.from_array(np.array([1, 3, 8, 8], np.int64), "fixed")
    model = tiny._model(nodes, [free], [out], [fixed])
    folder = tmp_path / "picky-models"
    tiny.write_bundle(folder, "picky", model=model,
                      input={**tiny.manifest("x", "classify")["input"],
                             "dynamic_batch": False})
    settings.models.dir = str(folder)
    with Services.build(settings, admin=ADMIN) as svc:
        svc.start(background=False)
        client = create_app(settings, svc).test_client()
        body = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 3, 8, 9],
                            "data": [0.0] * 216}]}
        response = client.post("/v2/models/picky/infer", json=body)
        assert response.status_code == 400, response.data
        assert "failed on this input" in response.get_json()["error"]
        good = dict(body, inputs=[dict(body["inputs"][0], shape=[1, 3, 8, 8],
                                       data=[0.0] * 192)])
        assert client.post("/v2/models/picky/infer", json=good).status_code == 200
        assert client.get("/v2/models/picky/ready").status_code == 200  # still serving
