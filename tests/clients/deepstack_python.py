"""deepstack-python 0.9 (what Home Assistant's DeepStack integrations use) against the box.
    python deepstack_python.py URL PHOTO   (the token in BOX_TOKEN)"""

import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

from common import Calls
from deepstack import core

url, photo = urlsplit(sys.argv[1]), Path(sys.argv[2]).read_bytes()
token = os.environ["BOX_TOKEN"]
box = {"ip": url.hostname, "port": url.port, "timeout": 10}
calls = Calls()
for key, name in ((token, ""), ("wrong-" + token, " wrong token"), ("", " no token")):
    objects = core.DeepstackObject(api_key=key, **box)
    calls("object.detect" + name, lambda o=objects: o.detect(photo))
    custom = core.DeepstackObject(api_key=key, custom_model="crowd", **box)
    calls("custom crowd.detect" + name, lambda c=custom: c.detect(photo))
    scene = core.DeepstackScene(api_key=key, **box)
    calls("scene.recognize" + name, lambda s=scene: s.recognize(photo))
    face = core.DeepstackFace(api_key=key, **box)
    calls("face.detect" + name, lambda f=face: f.detect(photo))
    calls("face.get_registered_faces" + name, face.get_registered_faces)
    calls("face.register" + name, lambda f=face: f.register("alice", photo))
    calls("face.recognize" + name, lambda f=face: f.recognize(photo))
missing = core.DeepstackObject(api_key=token, custom_model="no-such-model", **box)
calls("custom no-such-model.detect", lambda: missing.detect(photo))
calls.print()
