"""The appliance's exception hierarchy.

Deep code raises these; only the edges (the CLI and one Flask error handler) turn them into
exit codes or JSON. Every message names the bad value and says what to do.
"""


class ApplianceError(Exception):
    """Base of every error the appliance raises on purpose."""

    status = 500
    code = "internal"
    exit_code = 1

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class ConfigError(ApplianceError, ValueError):
    """A setting is unknown, of the wrong type or out of range."""

    code = "config"
    exit_code = 2


class BundleError(ApplianceError, ValueError):
    """A model bundle is malformed, fails its checksum or does not match its model."""

    status = 422
    code = "bad_bundle"
    exit_code = 2


class ModelLoadError(ApplianceError, RuntimeError):
    """onnxruntime could not create or warm up a session for a bundle."""

    status = 503
    code = "model_unavailable"


class ModelRunError(ApplianceError, RuntimeError):
    """onnxruntime failed to run a loaded model on one input (a shape a graph cannot take, a
    node that fails on these values): about that input, not the model's availability. 500
    where the box made the tensor from a picture; the v2 protocol, where the client sent
    the tensor, answers it 400."""

    status = 500
    code = "model_failed"


class ModelOutputError(ApplianceError, RuntimeError):
    """A model answered an input with outputs its task cannot read: the bundle is broken
    (its graphs disagree with its manifest or labels), not the request."""

    status = 500
    code = "bad_model_output"


class BadRequest(ApplianceError, ValueError):
    """The request is malformed (missing field, bad option, truncated image)."""

    status = 400
    code = "bad_request"
    exit_code = 2


class UnsupportedMedia(ApplianceError, ValueError):
    """The upload is not an image in an accepted format."""

    status = 415
    code = "unsupported_media_type"
    exit_code = 2


class PayloadTooLarge(ApplianceError, ValueError):
    """The body or the image is bigger than the box accepts."""

    status = 413
    code = "payload_too_large"
    exit_code = 2


class NotFound(ApplianceError, LookupError):
    """No such model or route."""

    status = 404
    code = "not_found"
    exit_code = 2


class Unauthorized(ApplianceError, PermissionError):
    """The bearer token is missing or wrong."""

    status = 401
    code = "unauthorized"


class Forbidden(ApplianceError, PermissionError):
    """The token is valid but lacks the scope for this route."""

    status = 403
    code = "forbidden"


class Conflict(ApplianceError, RuntimeError):
    """The request clashes with the box's state (a fit already running, a name taken)."""

    status = 409
    code = "conflict"
    exit_code = 2


class TooManyRequests(ApplianceError, RuntimeError):
    """This client sent more than its share; it should wait the Retry-After seconds."""

    status = 429
    code = "too_many_requests"


class InsufficientStorage(ApplianceError, OSError):
    """The disk is full: nothing was installed, the previous version still serves."""

    status = 507
    code = "insufficient_storage"


class Busy(ApplianceError, RuntimeError):
    """The model's queue is full; the client should retry after a moment."""

    status = 503
    code = "busy"


class Unavailable(ApplianceError, RuntimeError):
    """The model exists but is not serving (failed to load, or shutting down)."""

    status = 503
    code = "unavailable"


class DeadlineExceeded(ApplianceError, TimeoutError):
    """A model's run passed its deadline (models.timeout_s) and was stopped."""

    status = 504
    code = "model_timeout"


class NotProvided(ApplianceError, LookupError):
    """A route of another product's API that this box has no model for (licence plates,
    face recognition): the message says what is missing. 403, as DeepStack answers for an
    endpoint it was not started with (its clients say "not enabled on the server")."""

    status = 403
    code = "not_provided"
    exit_code = 2
