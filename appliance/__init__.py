"""The appliance: an offline AI box serving ONNX image models over HTTP.

Importing this package must stay cheap and safe anywhere: no onnxruntime, no hardware
libraries, no network. The telemetry switch below is set before anything can load
onnxruntime, because its pip build looks up a telemetry host otherwise.
"""

import os

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

__version__ = "0.1.0"
