"""The first session of an uploaded model, in a process of its own: a model that crashes or
exhausts onnxruntime takes this process down, not the server.

    python -m appliance.probe BUNDLE_FOLDER      exit 0: loads and warms; else the reason
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")


def main(folder: str) -> int:
    import numpy as np
    import onnxruntime as ort

    from appliance import bundle as bundles
    from appliance.engine import check_signature, input_dtype
    from appliance.errors import ApplianceError

    try:
        found = bundles.read(folder)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.log_severity_level = 3
        # From bytes, not a path: onnxruntime then has no folder to resolve external data
        # against, so a model that points outside itself cannot load at all.
        session = ort.InferenceSession(found.model_path.read_bytes(), options,
                                       providers=["CPUExecutionProvider"])
        name, shape = check_signature(session, found)
        session.run(None, {name: np.zeros(shape, input_dtype(found))})
    except ApplianceError as exc:
        print(exc.message)
        return 3
    except Exception as exc:  # onnxruntime's own errors: the reason is what matters
        print(f"onnxruntime cannot run the model: {str(exc).strip().splitlines()[0]}")
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
