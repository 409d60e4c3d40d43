"""The web floor: a do-nothing Flask app on waitress that receives the same multipart upload
as the box and answers a small JSON body. What any Flask+waitress server costs per request.

    python -m tools.bench.peers.floor PORT
"""

from __future__ import annotations

import sys

from flask import Flask, jsonify, request


def create_app() -> Flask:
    app = Flask(__name__)

    @app.post("/upload")
    def upload():
        data = request.files["image"].read()
        return jsonify(ok=True, bytes=len(data))

    return app


def main(argv: list[str]) -> int:
    import waitress

    # The box's own waitress settings (server.threads = 8), so only the app differs.
    waitress.serve(create_app(), host="127.0.0.1", port=int(argv[0]), threads=8,
                   ident="floor", _quiet=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
