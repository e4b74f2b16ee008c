"""What every endpoint of /api/ does alike, around django-ninja: the bearer token, the
body's limits, errors as ``{"error": ..., "field": ...}`` (always JSON, validation errors
included), 405 with ``Allow``, 404 for any other URL, the rate limit."""

import functools
import json
import logging
import secrets

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.parser import Parser
from ninja.security import HttpBearer

from outbox.errors import PortalError
from portal.ratelimit import ratelimit
from provisioning.errors import Conflict, NotAllowed

logger = logging.getLogger(__name__)

# An order is a few hundred bytes; the README's API section states this limit.
MAX_BODY_BYTES = 64 * 1024
BODY_METHODS = ("POST", "PUT", "PATCH")


class ApiError(Exception):
    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


def error(status: int, message: str, field: str | None = None) -> JsonResponse:
    body = {"error": message}
    if field:
        body["field"] = field
    return JsonResponse(body, status=status)


def authorised(request: HttpRequest) -> bool:
    expected = settings.ORDER_API_TOKEN
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return (
        bool(expected)
        and scheme == "Bearer"
        and secrets.compare_digest(token.strip().encode(), expected.encode())
    )


def unauthorised() -> JsonResponse:
    response = error(401, "Missing or invalid bearer token.")
    response["WWW-Authenticate"] = 'Bearer realm="orders"'
    return response


class BearerToken(HttpBearer):
    """ORDER_API_TOKEN, compared in constant time; the API is closed while it is unset."""

    def authenticate(self, request: HttpRequest, token: str) -> bool | None:
        return authorised(request) or None


class BoundedJsonParser(Parser):
    """JSON at any depth, of at most MAX_BODY_BYTES (checked before reading when declared)."""

    def parse_body(self, request: HttpRequest):
        if request.content_type != "application/json":
            raise ApiError(415, "Send the body as application/json.", "body")
        body = request.body
        if len(body) > MAX_BODY_BYTES:
            raise ApiError(413, too_large(), "body")
        try:
            payload = json.loads(body)
        # Nesting deeper than the parser's recursion limit is refused like any other bad JSON.
        except (ValueError, RecursionError):
            raise ApiError(400, "The body is not valid JSON.", "body") from None
        if b"\x00" in body or b"\\u0000" in body:
            # No text column takes a NUL character (PostgreSQL refuses it).
            raise ApiError(400, "The body holds a NUL character.", "body")
        if not isinstance(payload, dict):  # every body of the API is an object
            raise ApiError(400, "The body must be a JSON object.", "body")
        return payload


def too_large() -> str:
    return f"The body is larger than {MAX_BODY_BYTES // 1024} KiB."


def body_refusal(request: HttpRequest) -> JsonResponse | None:
    """413 for a body declared too large, before reading it."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return error(400, "The Content-Length header is not a number.", "body")
    if declared > MAX_BODY_BYTES:
        return error(413, too_large(), "body")
    return None


def guarded(view):
    """A URL of the API as Django routes it: 405 as JSON with a stable ``Allow``, a body
    declared too large refused (after the token) before it is read, the rate limit. CSRF does not
    apply: the API authenticates by a bearer token, never by a cookie."""

    @csrf_exempt
    @ratelimit("api", methods=("GET", "POST", "PATCH", "PUT", "DELETE"), json=True)
    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        # No name holds a NUL character, and PostgreSQL refuses one in a query: answered
        # here, before anything reaches the database.
        if "\x00" in request.path:
            return error(404, "Nothing has that name.")
        if "%00" in request.META.get("QUERY_STRING", "") or "\x00" in "".join(
            request.headers.values()
        ):
            return error(400, "A parameter holds a NUL character.")
        if request.method in BODY_METHODS:
            if not authorised(request):
                return unauthorised()
            if refusal := body_refusal(request):
                return refusal
        response = view(request, *args, **kwargs)
        if response.status_code == 405 and not isinstance(response, JsonResponse):
            allowed = sorted(m.strip() for m in response["Allow"].split(","))
            response = error(
                405, f"{request.method} is not allowed here; use {', '.join(allowed)}."
            )
            response["Allow"] = ", ".join(allowed)
        return response

    return wrapped


def not_found(request: HttpRequest, *args, **kwargs) -> JsonResponse:
    return error(404, "No such API endpoint (API paths end with a slash).")


_MESSAGES = {
    "missing": "This field is required.",
    "string_type": "Must be a string.",
    "model_attributes_type": "Must be a JSON object.",
    "dict_type": "Must be a JSON object.",
}


def _validation_error(exc: ValidationError) -> JsonResponse:
    """Pydantic's first complaint, as the field it names and a sentence."""
    first = exc.errors[0]
    names = [str(part) for part in first.get("loc", ()) if part not in ("body", "payload")]
    names = [name for name in names if name not in ("query", "path", "header")]
    message = _MESSAGES.get(first.get("type"), first.get("msg", "Invalid value.").rstrip(".") + ".")
    return error(400, message, names[-1] if names else None)


def install_error_handlers(api: NinjaAPI) -> None:
    @api.exception_handler(ValidationError)
    def validation(request, exc):
        return _validation_error(exc)

    @api.exception_handler(AuthenticationError)
    def authentication(request, exc):
        return unauthorised()

    @api.exception_handler(HttpError)
    def http_error(request, exc):
        if isinstance(exc.__cause__, ApiError):  # the parser's, wrapped by django-ninja
            cause = exc.__cause__
            return error(cause.status, cause.message, cause.field)
        return error(exc.status_code, str(exc))

    @api.exception_handler(ApiError)
    def api_error(request, exc):
        return error(exc.status, exc.message, exc.field)

    @api.exception_handler(Http404)
    def missing(request, exc):
        return error(404, str(exc) or "Not found.")

    @api.exception_handler(RequestDataTooBig)
    def too_big(request, exc):
        return error(413, too_large(), "body")

    @api.exception_handler(Conflict)
    def conflict(request, exc):
        return error(409, exc.message, exc.field)

    @api.exception_handler(NotAllowed)
    def not_allowed(request, exc):
        return error(409, exc.message, exc.field)

    @api.exception_handler(PortalError)
    def refused(request, exc):
        return error(400, exc.message, exc.field)

    @api.exception_handler(Exception)
    def internal(request, exc):
        logger.exception("API %s %s failed", request.method, request.path)
        return error(500, "Internal error; try again later.")
