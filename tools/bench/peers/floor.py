"""The web floor: a do-nothing Flask app that receives the same multipart upload as the box,
with the box's own reader (appliance.api.common.uploaded), and answers a small JSON body, on
the box's own server (appliance.httpserver, with the box's waitress settings). What a Flask
app costs per request on that server at the least, so that only the model's work differs.

    python -m tools.bench.peers.floor PORT
"""

from __future__ import annotations

import sys

from flask import Flask, jsonify

from appliance.api.common import uploaded

# An image route by the box's body table (appliance.api.limits), so the server caps, counts
# and reads this upload as it does the box's own.
ENDPOINT = "models.infer_active"


def create_app() -> Flask:
    app = Flask(__name__)

    def upload():
        data = uploaded("image", "send it as the form field image")
        return jsonify(ok=True, bytes=len(data))

    app.add_url_rule("/upload", ENDPOINT, upload, methods=["POST"])
    return app


def main(argv: list[str]) -> int:
    from appliance import config
    from appliance.api.limits import BodyLimits
    from appliance.httpserver import create_server
    from appliance.server import waitress_options

    app = create_app()
    # As the benchmark starts the box: one client stands for many, so no per-client budget.
    settings = config.load(env={}, overrides={"server.host": "127.0.0.1",
                                              "server.port": int(argv[0]),
                                              "server.max_receiving_mb": 1000.0})
    limits = BodyLimits(app.url_map, settings)
    create_server(app, limits, **waitress_options(settings, limits.largest())).run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
