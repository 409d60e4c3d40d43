"""Content Credentials (C2PA) on every picture the box makes, and reading them back.

Each signed file carries one manifest: the action `c2pa.edited` with the uploaded picture as
its parent ingredient, identified by its sha256 and not embedded (or `c2pa.created` where
there is no input), digital source type `trainedAlgorithmicMedia`, and the assertion
`org.appliance.result`: the model's name, version and task, its authors, source and licence
(the bundle's attribution), the box's name, when, the input's sha256 and the result id. It
is signed with the box's key (appliance.signkeys). The SDK's thumbnail is off: with it a
512x600 PNG grew by about 390 KB and took 39 ms to sign; without, a few KB and 1-3 ms.

`c2pa-python` (the `provenance` extra) is imported here only; without it the box serves
unsigned results and says so once at start.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance import __version__, safejson
from appliance.errors import (
    BadRequest,
    ConfigError,
    PayloadTooLarge,
    Unavailable,
    UnsupportedMedia,
)
from appliance.signkeys import Known
from appliance.text import one_line

log = logging.getLogger(__name__)
ASSERTION = "org.appliance.result"
SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
# A gallery capture: the camera's picture with the model's result drawn over or beside it.
COMPOSITE = ("http://cv.iptc.org/newscodes/digitalsourcetype/"
             "compositeWithTrainedAlgorithmicMedia")
INSTALL_HINT = "pip install c2pa-python (the provenance extra: pip install 'appliance[provenance]')"
MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "BMP": "image/bmp",
        "GIF": "image/gif"}
MAX_TEXT = 1000  # characters of each attribution text in the manifest (the schema caps 300)
# Failures that mean the pixels (or the file around them) changed after signing.
TAMPERED = ("assertion.dataHash.mismatch", "assertion.boxesHash.mismatch",
            "assertion.bmffHash.mismatch", "assertion.collectionHash.mismatch")
UNTRUSTED = "signingCredential.untrusted"
TRUSTED = "signingCredential.trusted"
# Who signed a file, as verify tells it: this box's CA issued the key, it is the key the
# owner installed, or neither (anyone can sign a manifest that copies the box's claim).
BY_BOX, BY_OWNER, BY_UNKNOWN = "this box", "the owner's key", "a key this box does not know"
# The SDK's JSON of a store within c2pastore's limits; the box's own has about 150 values.
MAX_JSON_VALUES = 100_000
READS_HINT = "verify reads the manifests the box makes"
_SIGN_SETTINGS = {"builder": {"thumbnail": {"enabled": False}},
                  # Every kind of result is read back by the tests; checking each file
                  # again after signing costs about half a millisecond.
                  "verify": {"verify_after_sign": False}}
# Verification never reaches out: no remote manifests, no OCSP (the box is offline).
_READ_SETTINGS = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}


# No result can be made before 2025, nor before this copy of the box's software was written
# to its disk: a clock earlier than that was never set (a Pi has no battery clock).
SANE_AFTER = 1735689600.0  # 2025-01-01 UTC


def clock_floor() -> float:
    """The earliest moment this box's clock can truthfully read: 2025, or when this
    software was installed (its files' time), whichever is later."""
    try:
        installed = Path(__file__).stat().st_mtime
    except OSError:
        installed = 0.0
    return max(SANE_AFTER, installed)


def made_at(now: float, floor: float) -> dict[str, Any]:
    """The `made` fields of a result made at `now` by the clock: the time, and whether the
    clock can be believed (`clock_set` false: it reads before `floor`)."""
    made = datetime.datetime.fromtimestamp(now, datetime.UTC).isoformat(timespec="seconds")
    return {"made": made, "clock_set": now >= floor}


@dataclass(frozen=True)
class Claim:
    """What one signed result says about itself."""

    model: str
    version: str
    task: str
    attribution: Mapping[str, str]
    input_sha256: str | None  # None: made from no uploaded picture (a gallery capture)
    input_format: str = ""  # the input's format name (JPEG, PNG...), when there is one
    result_id: str = ""
    source_type: str = SOURCE_TYPE


def available() -> bool:
    """Whether c2pa-python can be imported here."""
    try:
        import c2pa  # noqa: F401
    except ImportError:
        return False
    return True


def open_signer(settings) -> Signer | None:
    """The box's Signer, made at start: None when provenance.enabled is off, or when
    c2pa-python is missing (logged: the box serves unsigned results). Raises ConfigError
    for a key or certificate that does not read (the start stops, naming the fix)."""
    if not settings.provenance.enabled:
        return None
    if not available():
        log.warning("provenance.enabled is on but the C2PA library is missing: results are "
                    "not signed; %s, or set provenance.enabled = false", INSTALL_HINT)
        return None
    from appliance import signkeys

    key = signkeys.load_or_make(settings.state.dir, settings.provenance.key_file,
                                settings.provenance.cert_file)
    return Signer(key, box_name(settings))


def known_keys(settings, signer: Signer | None) -> Known:
    """The keys verify calls this box's own: its CA, and the key it signs with (the running
    signer's; without one, the chain its settings or state folder name)."""
    from appliance import signkeys

    if signer is not None:
        return signkeys.known(settings.state.dir, signer.key.chain_pem,
                              made_here=signer.key.source == "memory")
    return signkeys.known(settings.state.dir, signkeys.installed_chain(settings))


def box_name(settings) -> str:
    """The name results say they were made on: discovery.name, or the host name."""
    import socket

    return settings.discovery.name or socket.gethostname().split(".")[0]


def stamp(signer: Signer | None, data: bytes, mime: str, claim: Claim) -> bytes:
    """`data` signed with `claim`, or as it is without a signer. A result never fails over
    its signature: one the SDK cannot sign goes out unsigned, and is logged."""
    if signer is None:
        return data
    try:
        return signer.sign(data, mime, claim)
    except Exception as exc:  # c2pa raises its own types; a result must still go out
        log.warning("result of %s not signed: %s", claim.model, one_line(str(exc))[:300])
        return data


def result_id(model: str, version: str, input_sha256: str | None, output: bytes) -> str:
    """A stable id for one result: the same model and version on the same input giving the
    same output give the same id."""
    digest = hashlib.sha256()
    for part in (model, version, input_sha256 or "-"):
        digest.update(part.encode("utf-8") + b"\0")
    digest.update(hashlib.sha256(output).digest())
    return digest.hexdigest()


def json_result_id(model: str, version: str, input_sha256: str | None,
                   body: Mapping[str, Any]) -> str:
    """result_id of a JSON result: over its task fields, timings left out."""
    fields = {k: v for k, v in body.items() if k != "timing_ms"}
    return result_id(model, version, input_sha256,
                     json.dumps(fields, sort_keys=True, default=str).encode("utf-8"))


class Signer:
    """Signs result files with one key; thread-safe (one SDK context shared by all)."""

    def __init__(self, key, box: str) -> None:
        """`key` is a signkeys.SigningKey. Raises ConfigError when the SDK refuses it."""
        import c2pa

        self.key = key
        self.box = box
        self.clock: Callable[[], float] = time.time
        self.floor = clock_floor()
        settings = c2pa.Settings.from_dict(_SIGN_SETTINGS)
        try:
            info = c2pa.C2paSignerInfo(key.alg, key.chain_pem, key.key_pem, None)
            self._context = c2pa.Context(settings=settings, signer=c2pa.Signer.from_info(info))
        except c2pa.C2paError as exc:
            raise ConfigError(f"the C2PA library refuses the signing key in {key.source} "
                              f"({one_line(str(exc))[:200]}): run `appliance provenance "
                              "rotate`, install another with `appliance provenance "
                              "install-key`, or set provenance.enabled = false") from None
        finally:
            settings.close()

    def sign(self, data: bytes, mime: str, claim: Claim) -> bytes:
        """`data` (a PNG or JPEG the box made) with `claim` embedded and signed."""
        import c2pa

        builder = c2pa.Builder(self.definition(claim), context=self._context)
        out = io.BytesIO()
        builder.sign(mime, io.BytesIO(data), out)
        return out.getvalue()

    def definition(self, claim: Claim) -> dict[str, Any]:
        """The manifest definition the SDK signs."""
        agent = {"name": _text(claim.model), "version": _text(claim.version)}
        made = {"action": "c2pa.created", "digitalSourceType": claim.source_type,
                "softwareAgent": agent}
        manifest: dict[str, Any] = {
            "claim_generator_info": [{"name": "appliance", "version": __version__}],
            "title": f"{_text(claim.model)} result",
            "assertions": [{"label": "c2pa.actions.v2", "data": {"actions": [made]}},
                           {"label": ASSERTION, "data": self._result(claim)}],
        }
        if claim.input_sha256:
            made["action"] = "c2pa.edited"
            opened = {"action": "c2pa.opened", "parameters": {"ingredientIds": ["input"]}}
            manifest["assertions"][0]["data"]["actions"].insert(0, opened)
            manifest["ingredients"] = [{
                "title": "input", "label": "input", "relationship": "parentOf",
                "format": MIME.get(claim.input_format, "application/octet-stream"),
                "instance_id": f"sha256:{claim.input_sha256}"}]
        return manifest

    def _result(self, claim: Claim) -> dict[str, Any]:
        attribution = {k: _text(v) for k, v in list(claim.attribution.items())[:8]
                       if isinstance(k, str)}
        return {"model": {"name": _text(claim.model), "version": _text(claim.version),
                          "task": claim.task},
                "attribution": attribution, "box": _text(self.box),
                **made_at(self.clock(), self.floor),
                "input_sha256": claim.input_sha256, "result_id": claim.result_id}

    def close(self) -> None:
        self._context.close()


def _text(value: Any) -> str:
    return one_line(str(value)[:MAX_TEXT])


def verify(data: bytes, known: Known | None = None) -> dict[str, Any]:
    """What the C2PA manifest in `data` says and whether it holds: `signed` (a manifest is
    there), `valid` (the signature and every hash hold), `tampered` (the picture changed
    after signing), `signed_by` and `from_box` (the key is one of `known`, this box's own
    or its owner's: only then are the model, authors, licence, box and time reported as
    facts; otherwise they are reported under `claim`). Raises UnsupportedMedia for a file
    that is not a PNG or JPEG, BadRequest for one cut short or broken, PayloadTooLarge for
    a manifest store past c2pastore's limits, Unavailable when c2pa-python is missing."""
    from appliance import c2pastore
    from appliance.imaging import sniff

    try:
        import c2pa
    except ImportError:
        raise Unavailable(f"verifying needs the C2PA library: {INSTALL_HINT}") from None
    fmt = sniff(data)
    if fmt not in ("PNG", "JPEG"):
        raise UnsupportedMedia("verify reads the PNG and JPEG files the box makes; this is "
                               f"{fmt}")
    c2pastore.check(data, fmt)
    known = known or Known()
    try:
        store = _read_store(c2pa, MIME[fmt], data, known.box_ca)
        signed_by = BY_BOX if known.box_ca and _trusted(store) else BY_UNKNOWN
        if signed_by == BY_UNKNOWN and known.owner_serial and \
                _signer(store).get("cert_serial_number") == known.owner_serial:
            store = _read_store(c2pa, MIME[fmt], data, known.owner_top)
            signed_by = BY_OWNER if _trusted(store) else BY_UNKNOWN
    except c2pa.C2paError as exc:
        return _unreadable(exc)
    return _report(store, signed_by)


def _read_store(c2pa, mime: str, data: bytes, anchors: bytes) -> dict[str, Any]:
    """The SDK's reading of `data`, trusting the certificates in `anchors` (PEM), parsed
    with safejson's caps. Raises c2pa.C2paError, PayloadTooLarge past the caps."""
    conf: dict[str, Any] = dict(_READ_SETTINGS)
    if anchors:
        conf["trust"] = {"trust_anchors": anchors.decode("ascii")}
    settings = c2pa.Settings.from_dict(conf)
    context = c2pa.Context(settings=settings)
    try:
        with c2pa.Reader(mime, io.BytesIO(data), context=context) as reader:
            text = reader.json()
    finally:
        context.close()
        settings.close()
    try:
        store = safejson.loads(text.encode("utf-8"), MAX_JSON_VALUES, READS_HINT)
    except BadRequest as exc:
        raise PayloadTooLarge(f"the file's C2PA manifest is more than verify parses "
                              f"({exc.message})") from None
    return store if isinstance(store, dict) else {}


def _unreadable(exc: Exception) -> dict[str, Any]:
    """What a file the SDK could not read says: no manifest, or a broken one. Raises
    BadRequest for a file that is not a readable PNG or JPEG at all."""
    text = one_line(str(exc))[:300]
    if "asset could not be parsed" in text or text.startswith("NotSupported"):
        raise BadRequest(f"the file is not a readable PNG or JPEG ({text}): send the file "
                         "as the box made it")
    if "ManifestNotFound" in type(exc).__name__ or "ManifestNotFound" in text:
        return {"signed": False, "valid": False, "tampered": False, "from_box": False,
                "message": "no Content Credentials (C2PA manifest) in this file"}
    return {"signed": True, "valid": False, "tampered": False, "from_box": False,
            "problems": [text], "message": f"the file's C2PA manifest is broken: {text}"}


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _active(store: dict[str, Any]) -> dict[str, Any]:
    label = store.get("active_manifest")
    return _dict(_dict(store.get("manifests")).get(label)) if isinstance(label, str) else {}


def _codes(store: dict[str, Any], kind: str) -> list[str]:
    """The validation codes of the active manifest of `kind` (failure, success)."""
    results = _dict(_dict(store.get("validation_results")).get("activeManifest"))
    entries = results.get(kind)
    if not results and kind == "failure":  # an older reader shape: the flat list of failures
        entries = store.get("validation_status")
    entries = entries if isinstance(entries, list) else []
    return [str(_dict(e).get("code", "")) for e in entries]


def _signer(store: dict[str, Any]) -> dict[str, Any]:
    return _dict(_active(store).get("signature_info"))


def _trusted(store: dict[str, Any]) -> bool:
    return TRUSTED in _codes(store, "success") and UNTRUSTED not in _codes(store, "failure")


def _report(store: dict[str, Any], signed_by: str) -> dict[str, Any]:
    problems = [code for code in _codes(store, "failure") if code != UNTRUSTED]
    claim, wrong = _claim(_assertion(_active(store)))
    report: dict[str, Any] = {
        "signed": True, "valid": not problems,
        "tampered": any(code in TAMPERED for code in problems),
        "from_box": signed_by != BY_UNKNOWN and claim is not None,
        "trusted": signed_by != BY_UNKNOWN, "signed_by": signed_by,
        "state": store.get("validation_state"), "problems": problems,
        "signer": _signer(store)}
    if claim is not None and report["from_box"]:
        report.update(claim)
    elif claim is not None:
        report["claim"] = claim  # what a key this box does not know says: a claim only
    elif wrong:
        report["claim_problem"] = wrong
    report["message"] = _message(report)
    return report


def _assertion(manifest: dict[str, Any]) -> Any:
    """The data of the manifest's appliance assertion (any JSON: checked by _claim), or
    None when there is none."""
    assertions = manifest.get("assertions")
    for assertion in assertions if isinstance(assertions, list) else []:
        if _dict(assertion).get("label") == ASSERTION:
            return assertion.get("data")
    return None


def _claim(data: Any) -> tuple[dict[str, Any] | None, str]:
    """The appliance claim in an assertion's `data`, every field checked for its type and
    its text made one line (a forged claim is anyone's JSON), or (None, what is wrong)."""
    if data is None:
        return None, ""
    if not isinstance(data, dict):
        return None, "it is not an object"
    model = data.get("model")
    if not isinstance(model, dict) or \
            not all(isinstance(model.get(k), str) for k in ("name", "version", "task")):
        return None, "model is not an object of text name, version and task"
    attribution = data.get("attribution", {})
    if not isinstance(attribution, dict) or len(attribution) > 8 or \
            not all(isinstance(v, str) for v in attribution.values()):
        return None, "attribution is not an object of at most 8 texts"
    for key in ("box", "made", "result_id"):
        if not isinstance(data.get(key, ""), str):
            return None, f"{key} is not text"
    if not isinstance(data.get("input_sha256"), (str, type(None))) or \
            not isinstance(data.get("clock_set"), (bool, type(None))):
        return None, "input_sha256 is not text, or clock_set not true or false"
    return {"model": {k: _text(model[k]) for k in ("name", "version", "task")},
            "attribution": {_text(k): _text(v) for k, v in attribution.items()},
            **{k: _text(data.get(k, "")) for k in ("box", "made", "result_id")},
            "clock_set": data.get("clock_set"),
            "input_sha256": data["input_sha256"] and _text(data["input_sha256"])}, ""


def _message(report: dict[str, Any]) -> str:
    if report["tampered"]:
        return "the picture was changed after it was signed: the manifest does not hold"
    if not report["valid"]:
        return "the manifest is not valid: " + ", ".join(report["problems"])
    if report.get("claim_problem"):
        return (f"signed, but its {ASSERTION} claim is malformed "
                f"({report['claim_problem']}): not a result an appliance box made")
    if report["from_box"]:
        key = "the key its owner installed" if report["signed_by"] == BY_OWNER else \
            "this box's own key"
        return f"made by {_made(report)}; the signature holds, by {key}"
    if "claim" in report:
        return (f"signed by a key this box does not know: the manifest claims it was made "
                f"by {_made(report['claim'])}, and nothing here vouches for that claim")
    if report["trusted"]:
        return "signed by this box's key, but it carries no appliance result"
    return "signed, but not by an appliance box this box knows"


def _made(fields: dict[str, Any]) -> str:
    """'MODEL VERSION on BOX at TIME' from checked claim fields."""
    model = fields["model"]
    when = (f"at {fields['made']}" if fields.get("clock_set") is not False else
            f"at an unknown time (the box's clock was not set: it read {fields['made']})")
    return f"{model['name']} {model['version']} on {fields['box']} {when}"
