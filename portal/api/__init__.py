"""The billing system's HTTP API (DESIGN.md §5), with django-ninja: the bodies and answers
are the pydantic models of ``schemas``, from which /api/openapi.json is built; ``http``
keeps every answer JSON (errors as ``{"error": ..., "field": ...}``).

Views parse, authorise (the bearer token, for every endpoint) and call one service."""

import hashlib
import json
from datetime import UTC, datetime

from django.core import signing
from django.db.models import Prefetch, Q
from django.http import HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import path, re_path
from ninja import Header, NinjaAPI, Query, Router, Status
from ninja.openapi.docs import Swagger
from pydantic import Field

from certificates import selectors as certificate_selectors
from portal.api import schemas
from portal.api.http import (
    MAX_BODY_BYTES,
    BearerToken,
    BoundedJsonParser,
    error,
    guarded,
    install_error_handlers,
    not_found,
)
from provisioning import selectors, services
from provisioning.errors import Refused
from provisioning.models import Account, Domain, Platform, PlatformState
from provisioning.services import accounts as account_services
from provisioning.services import ordering

__all__ = ["MAX_BODY_BYTES", "api", "urlpatterns"]

PAGE_SIZE_MAX = 200
CURSOR_SALT = "portal.api.orders.cursor"
ACTOR = "api"

# Every endpoint may answer these (the token, the rate limit); bodies add 400/413/415.
COMMON_ERRORS = {401: schemas.ErrorOut, 405: schemas.ErrorOut, 429: schemas.ErrorOut}
BODY_ERRORS = {400: schemas.ErrorOut, 413: schemas.ErrorOut, 415: schemas.ErrorOut}

api = NinjaAPI(
    title="Private Exchange portal API",
    version="1.0",
    description=(
        "The billing system's API: orders (idempotent with `Idempotency-Key`), their "
        "listing, suspension and termination, accounts. Bearer token `ORDER_API_TOKEN`."
    ),
    auth=BearerToken(),
    parser=BoundedJsonParser(),
    urls_namespace="api",
    openapi_url="/openapi.json",
    # Swagger UI from django-ninja's own static files (no CDN), whose scripts are files:
    # the Content-Security-Policy needs no 'unsafe-inline'.
    docs=Swagger(settings={"persistAuthorization": False}),
    docs_url="/docs/",
)
install_error_handlers(api)
orders = Router(tags=["orders"])
accounts = Router(tags=["accounts"])


# Orders.


def _dns_record(order) -> dict | None:
    record = certificate_selectors.dns_validation_record(
        order=order
    ) or certificate_selectors.acme_txt_record(order=order)
    return record and {"name": record.name, "type": "TXT", "value": record.value}


def certificate_json(platform: Platform) -> dict | None:
    """The platform's current certificate order (DESIGN.md §5); its DNS record is the one
    the customer must serve now: the current order's before issuance, else its renewal's
    (read with the platform: ``certificate__renewal`` is selected with it)."""
    order = platform.certificate
    if order is None:
        return None
    renewal = getattr(order, "renewal", None)  # none yet: the reverse accessor raises
    return {
        "serial": order.serial or None,
        "not_before": order.not_before,
        "not_after": order.not_after,
        "state": order.status,
        "method": "acme" if order.backend == "acme" else order.method,
        "dns_record": _dns_record(renewal or order),
    }


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
        "created_at": platform.created_at,
        "updated_at": platform.updated_at,
        "ready_at": platform.ready_at,
        "suspension_reason": (
            platform.suspension_reason if platform.state == PlatformState.SUSPENDED else None
        ),
        "certificate": certificate_json(platform),
        "domains": selectors.domains_summary(platform),
    }


def _answer(platform: Platform) -> dict:
    """The JSON answer, as stored for an Idempotency-Key's replay."""
    return json.loads(schemas.OrderOut.model_validate(platform_json(platform)).model_dump_json())


def _platform(service: str) -> Platform:
    return get_object_or_404(
        Platform.objects.select_related("account", "certificate__renewal"), service=service
    )


@orders.post(
    "/",
    response={201: schemas.OrderOut, 422: schemas.ErrorOut, **BODY_ERRORS, **COMMON_ERRORS},
    summary="Place an order",
)
def order_create(
    request: HttpRequest,
    payload: schemas.OrderIn,
    idempotency_key: str | None = Header(
        None,
        alias="Idempotency-Key",
        max_length=255,
        description="Retry with the same key and body: the first answer, never a second "
        "platform. Another body with the key: 422. Kept at least 24 hours.",
    ),
):
    """A new platform for the account; its delivery starts at once."""
    try:
        account = Account.objects.get(nic=payload.account.strip().lower())
    except Account.DoesNotExist:
        return error(400, f"No account with NIC handle {payload.account[:40]!r}.", "account")
    if idempotency_key is None:
        return Status(201, platform_json(services.platform_order(account=account, actor=ACTOR)))
    # The body as sent (every key, in a canonical form): another body is another request.
    canonical = json.dumps(json.loads(request.body), sort_keys=True, separators=(",", ":"))
    fingerprint = hashlib.sha256(canonical.encode()).hexdigest()
    try:
        status, body = ordering.platform_order_once(
            account=account,
            actor=ACTOR,
            key=idempotency_key,
            fingerprint=fingerprint,
            answer=_answer,
        )
    except Refused as refusal:
        return error(422, refusal.message, refusal.field)
    return JsonResponse(body, status=status)


class OrderFilters(schemas.Schema):
    account: str | None = Field(None, max_length=64, description="NIC handle.")
    state: PlatformState | None = None
    updated_since: datetime | None = Field(None, description="ISO 8601, with a time zone.")
    cursor: str | None = Field(None, max_length=200, description="`next_cursor` of a page.")
    limit: int = Field(50, ge=1, le=PAGE_SIZE_MAX)


def _cursor(platform: Platform) -> str:
    return signing.dumps([platform.updated_at.isoformat(), platform.pk], salt=CURSOR_SALT)


def _after(cursor: str) -> Q:
    try:
        updated_at, pk = signing.loads(cursor, salt=CURSOR_SALT)
        updated_at = datetime.fromisoformat(updated_at)
    except (signing.BadSignature, ValueError, TypeError):
        raise Refused("cursor", "This cursor is not one this API gave.") from None
    return Q(updated_at__gt=updated_at) | Q(updated_at=updated_at, pk__gt=pk)


@orders.get(
    "/",
    response={200: schemas.OrderPage, 400: schemas.ErrorOut, **COMMON_ERRORS},
    summary="List orders",
)
def order_list(request: HttpRequest, filters: Query[OrderFilters]):
    """Orders by last change, oldest first, a page at a time: a stable order on
    (updated_at, id), so that following `next_cursor` misses none. An order changed while
    you page comes again later: keep the last `next_cursor` to poll for changes."""
    platforms = (
        Platform.objects.select_related("account", "certificate__renewal")
        .prefetch_related(
            Prefetch(
                "domains",
                queryset=selectors.current_domains(Domain.objects.all()),
                to_attr="current_domains",
            )
        )
        .order_by("updated_at", "pk")
    )
    if filters.account is not None:
        # By the account's id, so that the plan walks the (account, updated_at, id) index.
        account_id = (
            Account.objects.filter(nic=filters.account.strip().lower())
            .values_list("pk", flat=True)
            .first()
        )
        platforms = platforms.filter(account_id=account_id)
    if filters.state is not None:
        platforms = platforms.filter(state=filters.state)
    if filters.updated_since is not None:
        if filters.updated_since.tzinfo is None:
            raise Refused("updated_since", "Give a time zone, e.g. 2026-12-01T12:00:00Z.")
        platforms = platforms.filter(updated_at__gte=filters.updated_since.astimezone(UTC))
    if filters.cursor:
        platforms = platforms.filter(_after(filters.cursor))
    page = list(platforms[: filters.limit + 1])
    more = len(page) > filters.limit
    page = page[: filters.limit]
    return {
        "results": [platform_json(platform) for platform in page],
        "next_cursor": _cursor(page[-1]) if more else None,
    }


@orders.get(
    "/{service}/",
    response={200: schemas.OrderOut, 404: schemas.ErrorOut, **COMMON_ERRORS},
    summary="Read an order",
)
def order_detail(request: HttpRequest, service: str):
    return platform_json(_platform(service))


ACTION_RESPONSES = {200: schemas.OrderOut, 404: schemas.ErrorOut, **COMMON_ERRORS}


@orders.post(
    "/{service}/suspend",
    response={**ACTION_RESPONSES, 409: schemas.ErrorOut, **BODY_ERRORS},
    summary="Suspend an order",
)
def order_suspend(request: HttpRequest, service: str, payload: schemas.ReasonIn | None = None):
    """E.g. an unpaid invoice: nothing is deleted; the customer sees it suspended and the
    reason, and cannot configure or validate it. Suspending twice does nothing more."""
    platform = services.platform_suspend(
        platform_id=_platform(service).pk, actor=ACTOR, reason=payload.reason if payload else ""
    )
    return platform_json(_platform(platform.service))


@orders.post(
    "/{service}/resume",
    response={**ACTION_RESPONSES, 409: schemas.ErrorOut},
    summary="Resume an order",
)
def order_resume(request: HttpRequest, service: str):
    """Back to where it was suspended; 409 when it is not suspended."""
    platform = services.platform_resume(platform_id=_platform(service).pk, actor=ACTOR)
    return platform_json(_platform(platform.service))


@orders.post("/{service}/terminate", response=ACTION_RESPONSES, summary="Terminate an order")
def order_terminate(request: HttpRequest, service: str):
    """From any state. Then, as owed work: the DNS records the portal wrote are removed,
    the certificate revoked, its key destroyed, the customer emailed; the addresses go
    back to the pools after ADDRESS_QUARANTINE. Terminating twice does nothing more."""
    platform = services.platform_terminate(platform_id=_platform(service).pk, actor=ACTOR)
    return platform_json(_platform(platform.service))


# Accounts.


def account_json(account: Account) -> dict:
    return {
        "nic": account.nic,
        "email": account.email,
        "language": account.language,
        "zones": [zone.name for zone in account.zones.all()],
        "created_at": account.created_at,
    }


def _account(nic: str) -> Account:
    return get_object_or_404(Account.objects.prefetch_related("zones"), nic=nic.strip().lower())


@accounts.post(
    "/",
    response={201: schemas.AccountOut, 409: schemas.ErrorOut, **BODY_ERRORS, **COMMON_ERRORS},
    summary="Create an account",
)
def account_create(request: HttpRequest, payload: schemas.AccountIn):
    """The account, its login (the NIC handle) and its zones. The customer is emailed a
    link, in their language, to choose the password."""
    account = account_services.account_register(
        nic=payload.nic, email=payload.email, language=payload.language, zones=payload.zones
    )
    return Status(201, account_json(_account(account.nic)))


@accounts.get(
    "/{nic}/",
    response={200: schemas.AccountOut, 404: schemas.ErrorOut, **COMMON_ERRORS},
    summary="Read an account",
)
def account_detail(request: HttpRequest, nic: str):
    return account_json(_account(nic))


@accounts.patch(
    "/{nic}/",
    response={
        200: schemas.AccountOut,
        404: schemas.ErrorOut,
        409: schemas.ErrorOut,
        **BODY_ERRORS,
        **COMMON_ERRORS,
    },
    summary="Change an account",
)
def account_change(request: HttpRequest, nic: str, payload: schemas.AccountPatch):
    """The reference address, the language, or the whole list of zones."""
    account = account_services.account_update(
        account=_account(nic), email=payload.email, language=payload.language, zones=payload.zones
    )
    return account_json(_account(account.nic))


api.add_router("/orders", orders)
api.add_router("/accounts", accounts)


def _routes() -> list:
    patterns, _, _ = api.urls
    return [
        # /api/ itself is no endpoint (django-ninja reverses its name for the schema's paths).
        path("", not_found, name=pattern.name)
        if pattern.name == "api-root"
        else path(str(pattern.pattern), guarded(pattern.callback), name=pattern.name)
        for pattern in patterns
    ]


urlpatterns = [*_routes(), re_path(r"^", not_found)]
