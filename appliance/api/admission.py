"""The one admission path for every route that runs a model or shows what the box sees.

In order: the origin and host check (for every route, before routing answers), then for
admitted routes the inference token when one is set, load shedding, the per-client rate
limit, and for routes that run a model the model's terms and the token's daily quota, then
metrics whose labels are installed model names only and the usage ledger. A new route that runs a
model or shows the camera is decorated with `@admitted(...)`; a test fails for any route
that is neither admitted nor listed as open.
"""

from __future__ import annotations

import functools
import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask, make_response, request
from werkzeug.exceptions import HTTPException

from appliance.api.common import services
from appliance.api.origin import check_origin
from appliance.auth import CHALLENGE
from appliance.errors import ApplianceError, Busy, Unauthorized
from appliance.ledger import NO_TOKEN

UNKNOWN_MODEL = "_unknown"  # no bundle name can start with '_': never an installed name


@dataclass(frozen=True)
class Policy:
    """How one route is admitted.

    metered: count it in /metrics under the model it names (inference routes).
    local_view: the kiosk's own browser on this machine passes without the token (it shows
    the same pictures on the box's own screen; it cannot be given a secret).
    header: the header in which a protocol of other software carries the inference token
    when no `Authorization` header is sent (DOODS's `doods-auth-key`); like `Authorization`,
    it is checked from the headers, before the body is read (appliance.api.limits).
    token: where such a protocol carries it in the body instead (DeepStack's `api_key` form
    field), read only after the rate limit: a stranger's uploads are not parsed faster than
    the limit allows. `how` tells a refused client where to send the token.
    model: the installed model the request runs, from the view's arguments (default: the
    `name` argument; None: the active model), for its metrics label.
    """

    metered: bool = False
    local_view: bool = False
    header: str = ""
    token: Callable[[], str | None] | None = None
    how: str = "send 'Authorization: Bearer TOKEN'"
    model: Callable[[dict], str | None] | None = None


def register(app: Flask) -> None:
    """Check origin and host on every request, before any route runs."""
    app.before_request(_check_origin)


def _check_origin() -> None:
    check_origin(request.headers, services().settings)


def admitted(metered: bool = False, local_view: bool = False, **protocol) -> Callable:
    """Decorate a view so it runs only after auth, shedding and the rate limit; `protocol`
    holds Policy's `header`, `token`, `how` and `model` for the routes of other software's
    APIs."""
    policy = Policy(metered, local_view, **protocol)

    def wrap(view: Callable) -> Callable:
        @functools.wraps(view)
        def admit(**kwargs):
            return _admit(policy, view, kwargs)

        admit.admission = policy
        return admit

    return wrap


def _admit(policy: Policy, view: Callable, kwargs: dict):
    svc = services()
    started, status, token = time.perf_counter(), 500, None
    try:
        if policy.token is None:
            _authorize(svc, policy)
        shed(svc)
        svc.limiter.take(request.remote_addr or "unknown")
        if policy.token is not None:
            _authorize(svc, policy)
        if policy.metered:
            who = svc.auth.token_id(_header(policy))
            charge(svc, _model(policy, kwargs), who)
            token = who  # the ledger counts only what charge admitted (its 401 and 429 not)
        response = make_response(view(**kwargs))
        status = response.status_code
        return response
    except (ApplianceError, HTTPException) as exc:  # werkzeug's: a form over its limits
        status = exc.status if isinstance(exc, ApplianceError) else exc.code or 500
        raise
    finally:
        if policy.metered:
            count(svc, _model(policy, kwargs), status, time.perf_counter() - started, token)


def count_refusal(app: Flask, endpoint: str, args: dict, status: int) -> None:
    """Count in /metrics a request to a metered route that the HTTP server refused from its
    headers (no token, over a cap or a budget), as `_admit` counts those the app answers."""
    policy = getattr(app.view_functions.get(endpoint), "admission", None)
    if policy is None or not policy.metered:
        return
    with app.app_context():
        svc = services()
        svc.metrics.observe(model_label(svc, _model(policy, args)), status, 0.0)


def _model(policy: Policy, kwargs: dict) -> str | None:
    return policy.model(kwargs) if policy.model else kwargs.get("name")


def _authorize(svc, policy: Policy) -> None:
    if policy.local_view and loopback(request.remote_addr):
        return
    svc.auth.require_infer(_header(policy), policy.how)


def _header(policy: Policy) -> str | None:
    """The request's Authorization header, or the token where its protocol carries it."""
    header = request.headers.get("Authorization")
    if header is None and (policy.header or policy.token is not None):
        token = request.headers.get(policy.header) if policy.header else policy.token()
        header = f"Bearer {token}" if token else None
    return header


def charge(svc, name: str | None, token: str) -> None:
    """Admit one run of model `name` (None: the active one) by `token` ('admin', 'infer'
    or 'none'): the model's terms, then the token's daily quota. Raises Unauthorized when
    the model answers only with a token, TooManyRequests when the quota is spent."""
    label = model_label(svc, name)
    if label == UNKNOWN_MODEL:
        return  # answered 404 (or 503 while loading): nothing runs, nothing is charged
    runner = svc.registry.runners().get(label)
    if runner is not None and token == NO_TOKEN and \
            runner.bundle.manifest.terms.get("requires_token"):
        raise Unauthorized(f"model {label} answers only with a token (its terms: "
                           "requires_token): send 'Authorization: Bearer TOKEN' with the "
                           "inference token (auth.infer_token) or the admin token",
                           headers=CHALLENGE)
    if svc.ledger is not None:
        svc.ledger.admit(token)


def count(svc, name: str | None, status: int, seconds: float, token: str | None) -> None:
    """Count one request of model `name` (None: the active one) in /metrics and, once it
    was admitted and charged to `token`, in the usage ledger."""
    label = model_label(svc, name)
    svc.metrics.observe(label, status, seconds)
    if token is not None and label != UNKNOWN_MODEL and svc.ledger is not None:
        svc.ledger.record(label, token, status < 400)


def loopback(address: str | None) -> bool:
    """Whether `address` (a request's remote address) is this machine's loopback."""
    try:
        return ipaddress.ip_address(address or "").is_loopback
    except ValueError:
        return False


def shed(svc) -> None:
    """Over capacity, answer at once instead of queueing: a request behind more than
    server.max_waiting others waiting for a worker would only wait longer for the model.
    The default, 16, is two rounds of the default 8 threads (one round was too tight: a
    client's next request can arrive before the thread that answered its last one has taken
    a new task); it no longer follows server.threads, so fewer threads can be tried without
    shedding sooner. Raises Busy with Retry-After."""
    waiting = svc.backlog()
    if waiting > svc.settings.server.max_waiting:
        raise Busy(f"the box is over capacity ({waiting} requests waiting): retry in a "
                   "second", headers={"Retry-After": "1"})


def model_label(svc, name: str | None) -> str:
    """The metrics label for a request naming `name` (None: the active model): the name when
    it is installed, else one fixed label, so strangers' names never make new series."""
    wanted = name if name is not None else svc.registry.active
    return wanted if wanted and wanted in svc.registry.names() else UNKNOWN_MODEL
