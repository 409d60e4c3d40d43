"""MLServer's idiomatic custom runtime: an `MLModel` taking a V2 request whose BYTES input
holds base64 JPEGs (MLServer's Base64Codec) and answering JSON strings (StringCodec).

Run by `tools/bench/servers.py` as `mlserver start DIR` in its own virtualenv, with adaptive
batching on (model-settings.json: max_batch_size, max_batch_time) and
MLSERVER_PARALLEL_WORKERS=0 so the model runs in the server's process.
"""

from __future__ import annotations

import json

from mlserver import MLModel
from mlserver.codecs import Base64Codec, StringCodec
from mlserver.types import InferenceRequest, InferenceResponse

from tools.bench.peers.common import Classifier


class OnnxClassifier(MLModel):
    """The bundle named by the model settings' `parameters.uri`."""

    async def load(self) -> bool:
        self.classifier = Classifier(self.settings.parameters.uri)
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        images = Base64Codec.decode_input(payload.inputs[0])
        answers = [json.dumps(a) for a in self.classifier.predict(images)]
        return InferenceResponse(model_name=self.name, id=payload.id,
                                 outputs=[StringCodec.encode_output("predictions", answers)])
