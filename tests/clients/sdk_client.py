"""deepstack-sdk 0.2.1 (DeepStack's official SDK) against the box.
    python sdk_client.py URL PHOTO   (the token in BOX_TOKEN)"""

import os
import sys
from pathlib import Path

from common import Calls
from deepstack_sdk import Detection, Face, SceneRecognition, ServerConfig


def boxes(response):
    return [{"label": getattr(d, "label", None), "confidence": d.confidence,
             "box": [d.x_min, d.y_min, d.x_max, d.y_max]} for d in response]


url, photo = sys.argv[1], Path(sys.argv[2]).read_bytes()
token = os.environ["BOX_TOKEN"]
calls = Calls()
for key, name in ((token, ""), ("wrong-" + token, " wrong token"), (None, " no token")):
    config = ServerConfig(url, api_key=key)
    calls("Detection.detectObject" + name,
          lambda c=config: Detection(c).detectObject(photo), boxes)
    calls("Detection(crowd).detectObject" + name,
          lambda c=config: Detection(c, name="crowd").detectObject(photo), boxes)
    calls("SceneRecognition.recognizeScene" + name,
          lambda c=config: SceneRecognition(c).recognizeScene(photo),
          lambda s: {"label": s.label, "confidence": s.confidence})
    calls("Face.detectFace" + name, lambda c=config: Face(c).detectFace(photo), boxes)
    calls("Face.listFaces" + name, lambda c=config: Face(c).listFaces(), list)
    calls("Face.registerFace" + name,
          lambda c=config: Face(c).registerFace([photo], "alice"))
    calls("Face.recognizeFace" + name, lambda c=config: Face(c).recognizeFace(photo), boxes)
calls.print()
