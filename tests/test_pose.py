"""pose: keypoints mapped to the picture's pixels, the threshold, the skeleton's edges, the
gate's PCK, and the answer over HTTP from a real tiny model."""

import io

import numpy as np
import pytest
from PIL import Image

from appliance import tasks
from appliance.errors import BundleError
from appliance.tasks import pose
from appliance.tasks.preprocess import Geometry
from tests import models as tiny

POSE = tasks.get("pose")
SPEC = {"keypoints": list(pose.COCO_KEYPOINTS), "score_threshold": 0.3}


@pytest.fixture
def pose_dir(models_dir):
    spec = tiny.manifest("x", "pose")["input"]
    tiny.write_bundle(models_dir, "tiny-pose", "pose",
                      input={**spec, "resize": "letterbox", "dynamic_batch": False})
    return models_dir


def _points(scores: float) -> np.ndarray:
    points = np.zeros((1, 1, 17, 3), np.float32)
    points[0, 0, :, :2] = tiny.POSE_POINTS
    points[0, 0, :, 2] = scores
    return points


def test_keypoints_map_through_the_letterbox():
    geometry = Geometry((16, 8), 0.5, 0.5, pad_x=0, pad_y=2)
    person = pose.person(_points(0.9)[0, 0], list(pose.COCO_KEYPOINTS), (8, 8), geometry, 0.3)
    first, last = person["keypoints"][0], person["keypoints"][-1]
    assert (first["name"], first["x"], first["y"]) == ("nose", 4.0, 0.0)
    assert (last["name"], last["x"], last["y"]) == ("right_ankle", 12.0, 8.0)
    assert person["box"] == [4.0, 0.0, 12.0, 8.0] and person["score"] == pytest.approx(0.9)


def test_no_confident_keypoint_means_no_box():
    person = pose.person(_points(0.1)[0, 0], list(pose.COCO_KEYPOINTS), (8, 8),
                         Geometry((8, 8), 1, 1), 0.3)
    assert person["box"] is None and len(person["keypoints"]) == 17


def test_wrong_sized_output_is_an_error():
    with pytest.raises(ValueError, match="not people x 17 keypoints"):
        pose.keypoints(np.zeros((1, 16, 3), np.float32), 17)


def test_edges_must_join_named_keypoints(tmp_path):
    with pytest.raises(BundleError, match=r"output.edges: \['nose', 'tail'\] must be two"):
        tiny.write_bundle(tmp_path, "bad", "pose",
                          output={"edges": [["nose", "tail"]]})
    with pytest.raises(BundleError, match="a name appears twice"):
        tiny.write_bundle(tmp_path, "bad", "pose", output={"keypoints": ["a", "a"],
                                                            "edges": []})


def test_gate_pck_counts_keypoints_within_five_percent():
    ref = _points(0.9)
    near = ref.copy()
    near[0, 0, :, 0] += 0.005  # 1% of this person's diagonal (0.707)
    far = ref.copy()
    far[0, 0, :8, 0] += 0.2
    assert POSE.measure([[ref]], [[near]], SPEC, (8, 8))["pck"] == 1.0
    assert POSE.measure([[ref]], [[far]], SPEC, (8, 8))["pck"] == pytest.approx(9 / 17)


def test_http_answers_people_and_edges(pose_dir, client):
    buffer = io.BytesIO()
    Image.new("RGB", (32, 16), (200, 200, 200)).save(buffer, "PNG")
    body = client.post("/v1/models/tiny-pose/infer", data=buffer.getvalue(),
                       content_type="image/png").get_json()
    (person,) = body["people"]
    assert [k["name"] for k in person["keypoints"]] == list(pose.COCO_KEYPOINTS)
    assert person["keypoints"][0]["x"] == pytest.approx(8.0, abs=0.6)
    assert ["left_shoulder", "right_shoulder"] in body["edges"]
    bad = client.post("/v1/models/tiny-pose/infer?threshold=3", data=buffer.getvalue(),
                      content_type="image/png")
    assert bad.status_code == 400
    assert "option threshold must be between 0 and 1, got 3" in bad.get_json()["error"][
        "message"]


def test_nobody_is_reported_when_too_few_keypoints_are_sure(pose_dir, client):
    """The tiny model scores every keypoint by the picture's brightness: a dark picture has
    none at the threshold, so nobody is there (a single-pose model always places one)."""
    def people(colour, query=""):
        buffer = io.BytesIO()
        Image.new("RGB", (16, 16), colour).save(buffer, "PNG")
        return client.post(f"/v1/models/tiny-pose/infer{query}", data=buffer.getvalue(),
                           content_type="image/png").get_json()["people"]

    assert people((20, 20, 20)) == []
    assert len(people((20, 20, 20), "?threshold=0.05")) == 1
    assert len(people((200, 200, 200))) == 1
