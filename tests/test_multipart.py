"""The one-file form read without werkzeug: the same file as werkzeug reads for the shapes it
takes, and None (werkzeug decides) for every other shape."""

import io

import pytest
from werkzeug.formparser import parse_form_data
from werkzeug.test import EnvironBuilder

from appliance import multipart
from tests.conftest import CountingReads

PHOTO = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40 + b"\r\n--\r\n\xff\xd9"
B = "9051914041544843365972754266"


def form(data=PHOTO, boundary=B, head=None, tail=b"\r\n"):
    head = head if head is not None else (
        b'Content-Disposition: form-data; name="image"; filename="photo.jpg"\r\n'
        b"Content-Type: image/jpeg")
    delimiter = b"--" + boundary.encode()
    return delimiter + b"\r\n" + head + b"\r\n\r\n" + data + b"\r\n" + delimiter + b"--" + tail


def single_file(body, boundary, field):
    """`multipart.single_file` on `body` as a server's buffer of it."""
    return multipart.single_file(io.BytesIO(body), len(body), boundary, field)


def werkzeug_reads(body, boundary=B):
    """What werkzeug's own parser finds in field 'image' (None: no such file)."""
    environ = EnvironBuilder(method="POST", input_stream=io.BytesIO(body),
                             content_type=f"multipart/form-data; boundary={boundary}",
                             content_length=len(body)).get_environ()
    _, _, files = parse_form_data(environ)
    upload = files.get("image")
    if upload is None:
        return None
    try:
        return upload.read()
    finally:
        upload.close()


@pytest.mark.parametrize("body", [
    form(), form(tail=b""), form(data=b""), b"\r\n" + form(),
    form(head=b'content-disposition: form-data; name=image; filename=x.jpg'),
    form(head=b'Content-Disposition:form-data;name="image";filename=""'),
    form(head=b'Content-Type: image/png\r\nContent-Disposition: form-data; name="image"; '
              b'filename="a b.png"'),
], ids=["curl", "no-final-crlf", "werkzeugs-leading-crlf", "empty-file", "unquoted",
        "no-spaces", "type-first"])
def test_the_one_file_form_gives_what_werkzeug_gives(body):
    assert single_file(body, B, "image") == werkzeug_reads(body) is not None


@pytest.mark.parametrize("body, boundary", [
    (b"preamble\r\n" + form(), B),
    (b"\r\n\r\n" + form(), B),
    (form()[:-2] + b"epilogue", B),
    (form(head=b'Content-Disposition: form-data; name="photo"; filename="x.jpg"'), B),
    (form(head=b'Content-Disposition: form-data; name="image"'), B),
    (form(head=b'Content-Disposition: attachment; name="image"; filename="x.jpg"'), B),
    (form(head=b'Content-Type: image/jpeg'), B),
    (form(head=b'Content-Disposition: form-data; name="image"; filename="x.jpg"\r\n'
               b'Content-Transfer-Encoding: base64'), B),
    (form(head=b'Content-Disposition: form-data; name="image";\r\n filename="x.jpg"'), B),
    (form(head=b'Content-Disposition: form-data; name="image"; filename="x.jpg"\r\n'
               b'Content-Type: a\r\nContent-Type: b'), B),
    (form(head=b'Content-Disposition: form-data; name="\xff"; filename="x.jpg"'), B),
    (form(head=b'Content-Disposition: form-data; name="image"; filename="' + b"a" * 5000
               + b'"'), B),
    (form(head=b'Content-Disposition: form-data; name="image"; filename="x.jpg"\n'
               b'Content-Type: image/jpeg'), B),
    (form(data=PHOTO + b"\n--" + B.encode() + b"\r\n" + PHOTO), B),
    (form(data=PHOTO + b"\r\n--" + B.encode() + b"--\r\n" + PHOTO), B),
    (form()[:-len(B) - 6], B),
    (form().replace(b"\r\n\r\n", b"\r\n"), B),
    (form(boundary="x" * 71), "x" * 71),
    (form(), ""),
    (form(), "bö"),
    (form(), "other"),
], ids=["preamble", "blank-lines-first", "epilogue", "other-field", "no-filename",
        "not-form-data", "no-disposition", "other-header", "folded-header", "header-twice",
        "not-utf8", "long-head", "lone-lf-in-head",
        "boundary-after-lf-in-file", "closing-inside-file", "no-closing", "no-blank-line",
        "boundary-too-long", "no-boundary", "non-ascii-boundary", "wrong-boundary"])
def test_every_other_shape_is_left_to_werkzeug(body, boundary):
    assert single_file(body, boundary, "image") is None


def test_two_parts_are_left_to_werkzeug():
    delimiter = b"--" + B.encode()
    body = (delimiter + b'\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"'
            b"\r\n\r\n" + PHOTO + b"\r\n" + delimiter + b'\r\nContent-Disposition: form-data; '
            b'name="author"\r\n\r\nAda\r\n' + delimiter + b"--\r\n")
    assert single_file(body, B, "image") is None
    assert werkzeug_reads(body) == PHOTO


def test_the_file_is_read_in_one_piece_and_the_body_only_around_it():
    photo = PHOTO * 50  # 500 KB: its own read, not sliced out of a copy of the body
    body = form(data=photo)
    stream = CountingReads(body)
    assert multipart.single_file(stream, len(body), B, "image") == photo
    assert len(photo) in stream.reads
    assert sum(stream.reads) - len(photo) <= multipart.MAX_HEAD + 2 * len(B) + 16


def test_part_headers_just_under_the_cap_are_read_here():
    head = (b'Content-Disposition: form-data; name="image"; filename="'
            + b"a" * (multipart.MAX_HEAD - 100) + b'"')
    body = form(head=head)
    assert single_file(body, B, "image") == werkzeug_reads(body) == PHOTO
