"""The `appliance` command: serve, models, infer, check-config, install, discover, fleet,
verify, provenance (show, rotate, install-key), usage and doctor.

Imports stay inside the subcommands so that `appliance --version` is instant and needs
neither onnxruntime nor Flask.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from appliance import __version__


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also the source of the CLI reference in the docs)."""
    parser = argparse.ArgumentParser(
        prog="appliance", description="An offline AI box: ONNX image models over HTTP.")
    parser.add_argument("--version", action="version", version=f"appliance {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = sub.add_parser("serve", help="serve the installed models over HTTP")
    _common(serve)
    serve.add_argument("--host", help="bind address (server.host)")
    serve.add_argument("--port", type=int, help="TCP port (server.port)")
    serve.add_argument("--standalone", action="store_true", default=None,
                       help="run the camera/screen/buttons loop too (standalone.enabled)")

    models = sub.add_parser("models", help="list the installed bundles and whether they check out")
    _common(models)

    infer = sub.add_parser("infer", help="run a model on an image here, without a server")
    _common(infer)
    infer.add_argument("image", help="the image file")
    infer.add_argument("--model", required=True, help="the bundle's name")
    infer.add_argument("--output", "-o", help="where an image result is written")
    infer.add_argument("--top-k", type=int, help="classify: how many labels")
    infer.add_argument("--format", choices=("png", "jpeg"), help="image result format")
    infer.add_argument("--option", action="append", default=[], type=_option,
                       metavar="NAME=VALUE", help="any of the model's query options (as "
                       "/openapi.json lists them: threshold, min_confidence, output...); "
                       "repeat for more")

    check = sub.add_parser("check-config", help="validate and print the effective settings")
    _common(check)

    install = sub.add_parser("install", help="install a bundle folder or .tar.gz into the "
                             "models folder, checked as PUT checks it")
    _common(install)
    install.add_argument("bundle", help="a bundle folder or a .tar.gz of one")

    discover = sub.add_parser("discover", help="list the boxes on the local network (mDNS)")
    discover.add_argument("--timeout", type=float, default=3.0, help="seconds to listen")
    discover.add_argument("--interfaces", default="all",
                          help="all, or comma-separated IPv4 addresses to listen on")
    discover.add_argument("--verbose", "-v", action="store_true", help="details")

    fleet = sub.add_parser("fleet", help="an nginx configuration that shares load across "
                           "the boxes on the network")
    fleet.add_argument("--timeout", type=float, default=3.0, help="seconds to listen")
    fleet.add_argument("--interfaces", default="all",
                       help="all, or comma-separated IPv4 addresses to listen on")
    fleet.add_argument("--listen", default="8080", help="nginx's listen address or port")
    fleet.add_argument("--output", "-o", help="write here instead of printing")
    fleet.add_argument("--verbose", "-v", action="store_true", help="details")

    verify = sub.add_parser("verify", help="whether a picture carries a box's Content "
                            "Credentials (C2PA), which model made it, and whether it changed")
    verify.add_argument("file", help="a PNG or JPEG")
    verify.add_argument("--config", help="TOML settings file, for the box's own keys "
                        "(default: /etc/appliance/appliance.toml when it exists)")
    verify.add_argument("--json", action="store_true", help="the whole report as JSON")
    verify.add_argument("--verbose", "-v", action="store_true", help="details and tracebacks")

    prov = sub.add_parser("provenance", help="the key that signs the box's results: show, "
                          "rotate, or install your own")
    _common(prov)
    prov_sub = prov.add_subparsers(dest="action", metavar="ACTION", required=True)
    prov_sub.add_parser("show", help="the signer's certificate and where the box CA is")
    prov_sub.add_parser("rotate", help="a new signing key from the box's CA (the service "
                        "uses it after a restart)")
    install_key = prov_sub.add_parser("install-key", help="sign with your own key and "
                                      "certificate chain instead (after a restart)")
    install_key.add_argument("key", help="the PEM private key")
    install_key.add_argument("certs", help="the PEM certificate chain, the key's own first")

    usage = sub.add_parser("usage", help="how often each model answered on this box (the "
                           "usage ledger), or one model's statement for its authors")
    _common(usage)
    usage.add_argument("--model", help="only this model")
    usage.add_argument("--month", help="only this month, YYYY-MM")
    usage.add_argument("--csv", action="store_true", help="CSV instead of a table")
    usage.add_argument("--statement", action="store_true", help="the text to send the "
                       "model's authors (needs --model; --month defaults to this one)")

    doctor = sub.add_parser("doctor", help="check this machine for what serving needs, "
                            "each finding with its fix")
    _common(doctor)
    return parser


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML settings file (default: "
                        "/etc/appliance/appliance.toml when it exists)")
    parser.add_argument("--models-dir", help="where bundles live (models.dir)")
    parser.add_argument("--verbose", "-v", action="store_true", help="details and tracebacks")


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from appliance.errors import ApplianceError

    try:
        return COMMANDS[args.command](args)
    except ApplianceError as exc:
        return _fail(args, exc.message, exc.exit_code)
    except OSError as exc:
        return _fail(args, f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), 1)


def _fail(args: argparse.Namespace, message: str, code: int) -> int:
    print(f"appliance: error: {message}", file=sys.stderr)
    if args.verbose:
        import traceback

        traceback.print_exc()
    return code


def _settings(args: argparse.Namespace):
    from appliance import config

    overrides = {"models.dir": args.models_dir,
                 "server.host": getattr(args, "host", None),
                 "server.port": getattr(args, "port", None),
                 "standalone.enabled": getattr(args, "standalone", None)}
    return config.load(args.config, overrides=overrides)


def cmd_serve(args: argparse.Namespace) -> int:
    from appliance.server import serve

    serve(_settings(args), announce=lambda text: print(text, flush=True))
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from appliance import bundle as bundles
    from appliance.errors import BundleError

    folder = Path(_settings(args).models.dir)
    entries = bundles.folders(folder)
    if not entries:
        print(f"no bundles in {folder}: build the defaults with `make run` or install one")
    broken = 0
    for path in entries:
        try:
            m = bundles.read_installed(path).manifest  # as the server would serve it
            print(f"{m.name:24} {m.task:15} {m.model['precision']:5} {m.version:10} "
                  f"{m.attribution['license']:12} ok")
        except BundleError as exc:
            broken += 1
            print(f"{path.name:24} BROKEN: {exc.message}")
    return 1 if broken else 0


def cmd_infer(args: argparse.Namespace) -> int:
    import hashlib

    from appliance import bundle as bundles
    from appliance import imaging, pipeline, provenance
    from appliance.engine import Runner

    settings = _settings(args)
    query = {k: str(v) for k, v in (("top_k", args.top_k), ("format", args.format)) if v}
    query.update(args.option)
    data = Path(args.image).read_bytes()
    bundle = bundles.read(_bundle_folder(Path(settings.models.dir), args.model))
    with Runner(bundle, settings.models) as runner:
        answer = pipeline.infer(runner, data, query, settings.imaging.max_pixels)
    claim = provenance.Claim(answer.model, answer.version, bundle.manifest.task,
                             bundle.manifest.attribution, hashlib.sha256(data).hexdigest(),
                             imaging.sniff(data))
    body = answer.body()
    if answer.result.image is not None:
        output = Path(args.output or f"{Path(args.image).stem}-{bundle.name}."
                      f"{_image_format(answer.options)}")
        body.update(_write_signed(settings, answer, claim, output))
    else:
        body["result_id"] = provenance.json_result_id(answer.model, answer.version,
                                                      claim.input_sha256, answer.result.body)
    body["attribution"] = bundle.manifest.attribution
    print(json.dumps(body, indent=2))
    return 0


def _image_format(options: dict) -> str:
    fmt = options.get("format", "png")
    return fmt if fmt in ("png", "jpeg") else "png"  # segment's format=json: the PNG


def _write_signed(settings, answer, claim, output: Path) -> dict:
    """Write the picture result to `output`, signed as the service signs it (the box's key
    in the state folder; unsigned when provenance is off or c2pa-python is missing).
    Raises ConfigError for a signing key that does not read, OSError for the file."""
    import dataclasses

    from appliance import imaging, provenance

    encoded, mime = imaging.encode(answer.result.image, _image_format(answer.options),
                                   claim.attribution)
    result_id = provenance.result_id(claim.model, claim.version, claim.input_sha256, encoded)
    signer = provenance.open_signer(settings)
    try:
        encoded = provenance.stamp(signer, encoded, mime,
                                   dataclasses.replace(claim, result_id=result_id))
    finally:
        if signer is not None:
            signer.close()
    output.write_bytes(encoded)
    return {"output": str(output), "result_id": result_id, "signed": signer is not None}


def _option(text: str) -> tuple[str, str]:
    """One `--option NAME=VALUE`. Raises ArgumentTypeError without the `=`."""
    name, equals, value = text.partition("=")
    if not equals or not name:
        raise argparse.ArgumentTypeError(f"{text!r}: write NAME=VALUE, e.g. threshold=0.5")
    return name, value


def _bundle_folder(models_dir: Path, name: str) -> Path:
    from appliance.errors import NotFound

    folder = models_dir / name
    if not (folder / "manifest.json").is_file():
        names = sorted(p.parent.name for p in models_dir.glob("*/manifest.json"))
        raise NotFound(f"no model named {name!r} in {models_dir}: installed models are "
                       f"{', '.join(names) or 'none'}")
    return folder


def cmd_check_config(args: argparse.Namespace) -> int:
    from appliance import config

    print(config.to_toml(_settings(args)), end="")
    return 0


def cmd_install(args: argparse.Namespace) -> int:
    import shutil

    from appliance import install as installer
    from appliance.registry import Registry

    settings = _settings(args)
    models_dir = Path(settings.models.dir)
    source = Path(args.bundle)
    cap = settings.models.max_install_mb << 20
    unpack = installer.folder(source) if source.is_dir() else \
        installer.archive(lambda path: shutil.copyfile(source, path), cap)
    with Registry(settings) as registry:
        runner, replaced = installer.install(registry, unpack, None, settings.models)
    name = runner.bundle.name
    print(f"{'replaced' if replaced else 'installed'} {name} "
          f"({runner.bundle.manifest.task}, {runner.bundle.manifest.model['precision']}) in "
          f"{models_dir}; a running box serves it after a restart, or PUT it over HTTP")
    return 0


def cmd_discover(args: argparse.Namespace) -> int:
    from appliance.discovery import discover

    boxes = discover(args.timeout, args.interfaces)
    if not boxes:
        print(f"no box answered within {args.timeout:g} s (is discovery.enabled on, and this "
              "machine on the same network?)")
    for box in boxes:
        print(f"{box.name:20} http://{box.address}:{box.port}{box.path}  {box.version:8} "
              f"{box.models}")
    return 0


def cmd_fleet(args: argparse.Namespace) -> int:
    from appliance.discovery import discover
    from appliance.errors import NotFound
    from appliance.fleet import nginx_config

    boxes = discover(args.timeout, args.interfaces)
    try:
        text = nginx_config(boxes, args.listen)
    except ValueError as exc:
        raise NotFound(str(exc)) from None
    if args.output:
        from appliance.storage import write_text_atomic

        write_text_atomic(args.output, text)
        print(f"{len(boxes)} boxes in {args.output}: include it in nginx's http block, then "
              "nginx -s reload")
    else:
        print(text, end="")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from appliance import doctor

    text, code = doctor.report(doctor.examine(_settings(args)))
    print(text)
    return code


def cmd_verify(args: argparse.Namespace) -> int:
    from appliance import config
    from appliance.provenance import known_keys, verify

    known = known_keys(config.load(args.config), None)
    report = verify(Path(args.file).read_bytes(), known)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{args.file}: {report['message']}")
        attribution = report.get("attribution") or {}
        for key in ("author", "source", "license"):
            if attribution.get(key):
                print(f"  {key}: {attribution[key]}")
    return 0 if report["valid"] and report["from_box"] else 1


def cmd_provenance(args: argparse.Namespace) -> int:
    from appliance import signkeys

    settings = _settings(args)
    state = settings.state.dir
    if args.action == "rotate":
        key = signkeys.rotate(state)
    elif args.action == "install-key":
        key = signkeys.install(state, args.key, args.certs)
    else:
        key = signkeys.load_or_make(state, settings.provenance.key_file,
                                    settings.provenance.cert_file)
    print(f"signer: {key.subject}\nissuer: {key.issuer}\nexpires: {key.expires}\n"
          f"algorithm: {key.alg}\nfrom: {key.source}")
    ca = signkeys.folder(state) / signkeys.CA_FILE
    if args.action != "show":
        print("restart the service (systemctl restart appliance) to sign with it")
    if settings.provenance.key_file and args.action != "show":
        print("note: provenance.key_file is set, and takes precedence over this key")
    elif ca.exists():
        print(f"the box CA's certificate (to trust this box's results): {ca}")
    return 0


def cmd_usage(args: argparse.Namespace) -> int:
    import sqlite3
    import time

    from appliance import ledger
    from appliance.api.usage import check_model, check_month
    from appliance.errors import BadRequest

    settings = _settings(args)
    model, month = check_model(args.model), check_month(args.month)
    if args.statement and model is None:
        raise BadRequest("--statement needs --model NAME: whose statement?")
    if args.statement:
        month = month or ledger.month_of(time.time())
    try:
        rows = ledger.read(settings.state.dir, model, month)
    except sqlite3.Error as exc:
        return _fail(args, f"cannot read the usage ledger in {settings.state.dir}: {exc} "
                     "(the service moves a broken one aside at its next start)", 1)
    if args.statement:
        from appliance.provenance import box_name

        print(ledger.statement(model, month, rows, box_name(settings)), end="")
        return 0
    if args.csv:
        print(ledger.to_csv(rows), end="")
        return 0
    print(f"{'period':<10}  {'model':<24}  {'token':<5}  {'answered':>9}  {'failed':>7}")
    for r in rows:
        print(f"{r.period:<10}  {r.model:<24}  {r.token:<5}  {r.answered:>9,}  {r.failed:>7,}")
    return 0


COMMANDS = {"serve": cmd_serve, "models": cmd_models, "infer": cmd_infer,
            "check-config": cmd_check_config, "doctor": cmd_doctor,
            "discover": cmd_discover, "install": cmd_install, "fleet": cmd_fleet,
            "verify": cmd_verify, "provenance": cmd_provenance, "usage": cmd_usage}

if __name__ == "__main__":
    sys.exit(main())
