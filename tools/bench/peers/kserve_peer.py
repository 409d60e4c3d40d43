"""KServe's Python model server, idiomatically: a `kserve.Model` whose `predict` takes the
v1 protocol's `{"instances": [{"image": {"b64": ...}}]}` and returns top-5 labels.

    python -m tools.bench.peers.kserve_peer PORT BUNDLE_DIR   (in a virtualenv with kserve)

KServe's own server has no request batching (that is a sidecar agent in a cluster).
"""

from __future__ import annotations

import base64
import sys

import kserve
import uvicorn

from tools.bench.peers.common import Classifier

_config_init = uvicorn.Config.__init__


def _loopback_config(self, *args, **kwargs) -> None:
    # KServe's REST server hard-codes host 0.0.0.0; the benchmark listens on loopback only.
    kwargs["host"] = "127.0.0.1"
    _config_init(self, *args, **kwargs)


uvicorn.Config.__init__ = _loopback_config


class OnnxClassifier(kserve.Model):
    def __init__(self, folder: str) -> None:
        super().__init__("classifier")
        self.folder = folder

    def load(self) -> bool:
        self.classifier = Classifier(self.folder)
        self.ready = True
        return True

    def predict(self, payload: dict, headers=None, response_headers=None) -> dict:
        images = [base64.b64decode(i["image"]["b64"]) for i in payload["instances"]]
        return {"predictions": self.classifier.predict(images)}


def main(argv: list[str]) -> int:
    model = OnnxClassifier(argv[1])
    model.load()
    kserve.ModelServer(http_port=int(argv[0]), enable_grpc=False,
                       enable_latency_logging=False).start([model])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
