"""The ordering system's HTTP API (DESIGN.md §5)."""

import json
import secrets

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from provisioning import services
from provisioning.models import Account, Platform


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


@csrf_exempt
@require_http_methods(["POST"])
def orders(request: HttpRequest) -> JsonResponse:
    if not _authorised(request):
        return _unauthorised()
    try:
        payload = json.loads(request.body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return _error(400, "The body is not valid JSON.", "body")
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


@require_http_methods(["GET"])
def order_detail(request: HttpRequest, service: str) -> JsonResponse:
    if not _authorised(request):
        return _unauthorised()
    try:
        platform = Platform.objects.select_related("account").get(service=service)
    except Platform.DoesNotExist:
        return _error(404, "No such order.")
    return JsonResponse(platform_json(platform))
