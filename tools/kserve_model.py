"""The same bundle on KServe's Python model server: when one box is not enough, the model
moves to a cluster and clients keep speaking the same v2 protocol.

    .venv-kserve/bin/python tools/kserve_model.py models/efficientnet-lite0 [--http-port 8080]

Reuses the appliance's bundle loader and engine (not a copy): tensors in, tensors out, as
the box's /v2 routes. Needs a virtualenv with `kserve` (make kserve-venv); KServe is kept
out of the project's own dependencies on purpose.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
if __name__ == "__main__":
    sys.path[0] = str(Path(__file__).resolve().parent.parent)  # not this folder

import kserve
from kserve import InferOutput, InferRequest, InferResponse

from appliance import bundle as bundles
from appliance import config
from appliance.engine import Runner

DATATYPES = {"float32": "FP32", "uint8": "UINT8", "int64": "INT64", "float16": "FP16",
             "int32": "INT32"}


class ApplianceModel(kserve.Model):
    """A bundle served by KServe, through the appliance's own runner."""

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)
        super().__init__(self.folder.name)
        self.runner: Runner | None = None

    def load(self) -> bool:
        bundle = bundles.read(self.folder)
        self.runner = Runner(bundle, config.load(env={}).models)
        self.runner.warm_up()
        self.ready = True
        return self.ready

    async def predict(self, payload: InferRequest, headers=None,
                      response_headers=None) -> InferResponse:
        tensor = payload.inputs[0].as_numpy()
        outputs = self.runner.run(tensor)
        names = [o.name for o in self.runner.session.get_outputs()]
        results = [InferOutput(name=name, shape=list(out.shape),
                               datatype=DATATYPES[str(out.dtype)], data=out)
                   for name, out in zip(names, outputs, strict=True)]
        return InferResponse(response_id=payload.id or "", model_name=self.name,
                             infer_outputs=results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", help="a bundle folder")
    parser.add_argument("--http-port", type=int, default=8080)
    args = parser.parse_args(argv)
    model = ApplianceModel(args.bundle)
    model.load()
    kserve.ModelServer(http_port=args.http_port, enable_grpc=False,
                       enable_latency_logging=False).start([model])
    return 0


if __name__ == "__main__":
    sys.exit(main())
