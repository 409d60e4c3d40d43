"""pydoods 1.0.2 (what Home Assistant's core DOODS integration uses) against the box.
    python pydoods_client.py URL PHOTO   (URL ends in /doods; the token in BOX_TOKEN)"""

import os
import sys
from pathlib import Path

from common import Calls
from pydoods import PyDOODS

url, photo = sys.argv[1], Path(sys.argv[2]).read_bytes()
token = os.environ["BOX_TOKEN"]
calls = Calls()
for key, name in ((token, ""), ("wrong-" + token, " wrong token"), (None, " no token")):
    calls("PyDOODS()" + name, lambda k=key: PyDOODS(url, k, timeout=10).get_detectors())
doods = PyDOODS(url, token, timeout=10)
calls("get_detectors", doods.get_detectors)
calls("detect tiny-faces {face: 50}",
      lambda: doods.detect(photo, {"face": 50}, detector_name="tiny-faces"))
calls("detect default {*: 0}", lambda: doods.detect(photo, {"*": 0}))
calls("detect default {}", lambda: doods.detect(photo))
calls("detect crowd {person: 50}",
      lambda: doods.detect(photo, {"person": 50}, detector_name="crowd"))
calls("detect no-such-model", lambda: doods.detect(photo, {}, detector_name="no-such-model"))
calls("detect not an image", lambda: doods.detect(b"not an image", {"*": 0}))
calls.print()
