"""The ordering system's HTTP API (DESIGN.md §5).

Every answer is JSON, errors as ``{"error": ..., "field": ...}``: a body is read only as
``application/json`` (415 otherwise) of at most MAX_BODY_BYTES (413), parsed at any depth
into 400 when it is not JSON, and other methods get 405 with ``Allow``."""

import functools
import json
import logging
import secrets

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from provisioning import services
from provisioning.models import Account, Platform

logger = logging.getLogger(__name__)

# An order is a few hundred bytes; the README's API section states this limit.
MAX_BODY_BYTES = 64 * 1024


class ApiError(Exception):
    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


def _error(status: int, message: str, field: str | None = None) -> JsonResponse:
    body = {"error": message}
    if field:
        body["field"] = field
    return JsonResponse(body, status=status)


def _authorised(request: HttpRequest) -> bool:
    expected = settings.ORDER_API_TOKEN
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return (
        bool(expected)
        and scheme == "Bearer"
        and secrets.compare_digest(token.strip().encode(), expected.encode())
    )


def _unauthorised() -> JsonResponse:
    response = _error(401, "Missing or invalid bearer token.")
    response["WWW-Authenticate"] = 'Bearer realm="orders"'
    return response


def api_view(*methods: str):
    """An endpoint of the API: these methods only, the bearer token, JSON errors.

    CSRF does not apply: the API authenticates by a bearer token, never by a cookie."""

    def decorate(view):
        @csrf_exempt
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> JsonResponse:
            if request.method not in methods:
                response = _error(
                    405, f"{request.method} is not allowed here; use {', '.join(methods)}."
                )
                response["Allow"] = ", ".join(methods)
                return response
            if not _authorised(request):
                return _unauthorised()
            try:
                return view(request, *args, **kwargs)
            except ApiError as error:
                return _error(error.status, error.message, error.field)
            except Exception:
                logger.exception("API %s %s failed", request.method, request.path)
                return _error(500, "Internal error; try again later.")

        return wrapped

    return decorate


def json_body(request: HttpRequest) -> object:
    if request.content_type != "application/json":
        raise ApiError(415, "Send the body as application/json.", "body")
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise ApiError(400, "The Content-Length header is not a number.", "body") from None
    limit = f"The body is larger than {MAX_BODY_BYTES // 1024} KiB."
    if declared > MAX_BODY_BYTES:
        raise ApiError(413, limit, "body")
    body = request.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        raise ApiError(413, limit, "body")
    try:
        return json.loads(body)
    # Nesting deeper than the parser's recursion limit is refused like any other bad JSON.
    except (ValueError, RecursionError):
        raise ApiError(400, "The body is not valid JSON.", "body") from None


def not_found(request: HttpRequest, *args, **kwargs) -> JsonResponse:
    return _error(404, "No such API endpoint (API paths end with a slash).")


def platform_json(platform: Platform) -> dict:
    return {
        "service": platform.service,
        "state": platform.state,
        "account": platform.account.nic,
        "order_number": platform.order_number,
        "server_name": platform.server_name or None,
        "dns_assist": platform.dns_assist,
        "dns_state": platform.dns_state,
        "ipv4": platform.ipv4,
        "ipv6": platform.ipv6,
        "created_at": platform.created_at.isoformat(),
        "ready_at": platform.ready_at.isoformat() if platform.ready_at else None,
    }


@api_view("POST")
def orders(request: HttpRequest) -> JsonResponse:
    payload = json_body(request)
    if not isinstance(payload, dict):
        return _error(400, "The body must be a JSON object.", "body")
    nic = payload.get("account")
    if nic is None:
        return _error(400, "This field is required.", "account")
    if not isinstance(nic, str):
        return _error(400, "Must be a string: the account's NIC handle.", "account")
    try:
        account = Account.objects.get(nic=nic.strip().lower())
    except Account.DoesNotExist:
        return _error(400, f"No account with NIC handle {nic[:40]!r}.", "account")
    platform = services.platform_order(account=account, actor="api")
    return JsonResponse(platform_json(platform), status=201)


@api_view("GET")
def order_detail(request: HttpRequest, service: str) -> JsonResponse:
    try:
        platform = Platform.objects.select_related("account").get(service=service)
    except Platform.DoesNotExist:
        return _error(404, "No such order.")
    return JsonResponse(platform_json(platform))
