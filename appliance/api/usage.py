"""/v1/usage: the usage ledger (admin), as JSON or CSV, and per-model statements."""

from __future__ import annotations

import re

from flask import Blueprint, Response, jsonify, request

from appliance import ledger
from appliance.api.common import admin_services, services
from appliance.errors import BadRequest, Unavailable

bp = Blueprint("usage", __name__, url_prefix="/v1")
MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
FORMATS = ("json", "csv")


def _ledger():
    svc = admin_services()
    if svc.ledger is None:
        raise Unavailable("the usage ledger is off on this box: set usage.enabled = true "
                          "and restart to count")
    return svc.ledger


@bp.get("/usage")
def usage():
    """Admin: requests per model, UTC day (older: month) and token; `model` and `month`
    (YYYY-MM) filter; `format=csv` or `Accept: text/csv` for CSV."""
    book = _ledger()
    model, month = check_model(request.args.get("model")), check_month(request.args.get("month"))
    rows = book.rows(model, month)
    if _format() == "csv":
        response = Response(ledger.to_csv(rows), mimetype="text/csv")
        response.headers["Content-Disposition"] = 'attachment; filename="usage.csv"'
        return response
    return jsonify({**book.status(), "model": model, "month": month,
                    "totals": ledger.totals(rows), "rows": [r.as_dict() for r in rows]})


@bp.get("/usage/<name>/statement")
def statement(name: str):
    """Admin: a plain-text statement of how often model `name` answered in `month`
    (YYYY-MM, default this UTC month), to send to its authors."""
    book = _ledger()
    name = check_model(name)
    month = check_month(request.args.get("month")) or ledger.month_of(book.clock())
    from appliance.provenance import box_name

    svc = services()
    text = ledger.statement(name, month, book.rows(name, month), box_name(svc.settings),
                            _credit(svc, name), book.status())
    return Response(text, mimetype="text/plain")


def _credit(svc, name: str) -> str:
    runner = svc.registry.runners().get(name)
    if runner is None:
        return ""
    m = runner.bundle.manifest
    return f"{m.name} {m.version} by {m.attribution['author']}, {m.attribution['license']}"


def check_model(value: str | None) -> str | None:
    """`value` when it is a model name (or None). Raises BadRequest."""
    from appliance.bundle import check_name

    if value is not None:
        check_name(value, label="model ")
    return value


def check_month(value: str | None) -> str | None:
    """`value` when it is a month, YYYY-MM (or None). Raises BadRequest."""
    if value is None or MONTH.fullmatch(value):
        return value
    raise BadRequest(f"month {value[:20]!r} is not a month: use YYYY-MM, e.g. 2026-11")


def _format() -> str:
    wanted = request.args.get("format")
    if wanted is None:
        best = request.accept_mimetypes.best_match(["application/json", "text/csv"])
        return "csv" if best == "text/csv" else "json"
    if wanted not in FORMATS:
        raise BadRequest(f"format {wanted[:20]!r} is not one of {', '.join(FORMATS)}")
    return wanted
