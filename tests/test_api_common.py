"""How a picture comes out of a request (appliance.api.common.uploaded): straight from the
web server's buffer of the body when it holds the whole body, as werkzeug would read it."""

import sys

import pytest
from flask import Flask, jsonify, request

from appliance.api.common import uploaded
from tests.conftest import CountingReads

FORM = (b'--B\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n\r\n'
        b"PHOTO\r\n--B--\r\n")


@pytest.fixture
def app():
    app = Flask(__name__)

    @app.post("/u")
    def upload():
        data = uploaded("image", "send one")
        return jsonify(data=data.decode("latin-1"), after=request.get_data().decode(),
                       form=dict(request.form))

    @app.post("/picture")
    def picture():
        return uploaded("image", "send one")

    return app


def _call(app, body: bytes, ctype: str, length: int | None = None, server_whole=True,
          path="/u"):
    """POST `body` to the app as waitress hands it over (`server_whole`: the server
    terminates the input, as waitress does, having read the whole body)."""
    stream = CountingReads(body)
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": path, "SERVER_NAME": "box",
               "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http",
               "wsgi.input": stream, "wsgi.errors": sys.stderr, "wsgi.version": (1, 0),
               "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False,
               "CONTENT_TYPE": ctype, "CONTENT_LENGTH": str(len(body) if length is None
                                                            else length)}
    if server_whole:
        environ["wsgi.input_terminated"] = True
    status = []
    answer = b"".join(app(environ, lambda s, headers: status.append(s)))
    return status[0], answer, stream


@pytest.mark.parametrize("body, ctype, photo", [
    (FORM, "multipart/form-data; boundary=B", "PHOTO"),
    (b"RAWPHOTO", "image/jpeg", "RAWPHOTO"),
])
def test_the_picture_is_read_from_the_servers_buffer_and_the_body_is_then_read(
        app, body, ctype, photo):
    status, answer, stream = _call(app, body, ctype)
    assert status == "200 OK"
    # Read as werkzeug's stream would leave it: nothing after, the form's fields known.
    assert answer == b'{"after":"","data":"%s","form":{}}\n' % photo.encode()
    assert len(photo) in stream.reads  # the picture in one read of its own


def test_a_body_the_buffer_does_not_hold_whole_is_read_by_werkzeug(app):
    # Shorter than its Content-Length, on a server that does not say it read it all:
    # werkzeug's stream says the client went away (400), as before.
    status, _, _ = _call(app, b"RAWPHOTO", "image/jpeg", length=20, server_whole=False,
                         path="/picture")
    assert status.startswith("400")
