"""The domains page of a ready platform (the guide's next step) and its actions. Views
parse, authorise and call one service of provisioning.services.domains."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.views.decorators.http import require_http_methods

from outbox.errors import PortalError
from portal.forms import DomainForm, DomainModeForm
from portal.views import _own_platform
from provisioning import selectors, services
from provisioning.errors import NotAllowed, Refused
from provisioning.models import AssistStatus, Domain, PlatformState
from zones.assist import MailAssistPlan
from zones.names import InvalidDomainName, normalise_domain


def _ready_platform(request: HttpRequest, service: str):
    platform = _own_platform(request, service)
    if platform.state != PlatformState.READY:
        raise Http404("Domains are added once the platform is ready.")
    return platform


def _own_domain(request: HttpRequest, service: str, name: str) -> Domain:
    platform = _ready_platform(request, service)
    try:
        domain = platform.domains.get(name=normalise_domain(name), removed_at=None)
    except (Domain.DoesNotExist, InvalidDomainName):
        raise Http404("No such domain on this platform.") from None
    domain.platform = platform
    return domain


@login_required
@require_http_methods(["GET", "POST"])
def domains(request: HttpRequest, service: str) -> HttpResponse:
    platform = _ready_platform(request, service)
    form = DomainForm(request.POST or None, platform=platform)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            domain = services.domain_add(
                platform_id=platform.pk,
                actor=services.actor_for(request.user),
                name=data["domain"],
                mode=data["mode"],
                relay_host=data["relay_host"],
                dns_assist=data["dns_assist"],
            )
        except Refused as refusal:
            form.add_error(refusal.field, gettext(refusal.message))
        else:
            messages.success(
                request,
                gettext("%(domain)s is added.") % {"domain": domain.name_display},
            )
            return redirect("platform-domains", service=service)
    return render(
        request,
        "portal/domains.html",
        {
            "platform": platform,
            "domains": selectors.domains_page(platform),
            "form": form,
            "zones": form.managed_zones,
            "ownership_target": settings.DOMAIN_CHECK_TARGET,
        },
        status=400 if request.method == "POST" else 200,
    )


def _back(service: str) -> HttpResponse:
    return redirect("platform-domains", service=service)


@login_required
@require_http_methods(["POST"])
def domain_check(request: HttpRequest, service: str, name: str) -> HttpResponse:
    domain = _own_domain(request, service, name)
    try:
        services.domain_check_now(domain_id=domain.pk, actor=services.actor_for(request.user))
    except NotAllowed as refusal:
        messages.info(request, gettext(refusal.message))
    except PortalError as error:
        messages.error(
            request,
            gettext("The check could not be completed: %(reason)s") % {"reason": error.message},
        )
    else:
        messages.success(request, gettext("%(domain)s checked.") % {"domain": domain.name_display})
    return _back(service)


@login_required
@require_http_methods(["GET", "POST"])
def domain_mode(request: HttpRequest, service: str, name: str) -> HttpResponse:
    domain = _own_domain(request, service, name)
    initial = {"mode": domain.mode, "relay_host": domain.relay_host}
    form = DomainModeForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.domain_mode_change(
                domain_id=domain.pk,
                actor=services.actor_for(request.user),
                mode=form.cleaned_data["mode"],
                relay_host=form.cleaned_data["relay_host"],
            )
        except Refused as refusal:
            form.add_error(refusal.field, gettext(refusal.message))
        else:
            messages.success(
                request,
                gettext("The mode of %(domain)s is changed.") % {"domain": domain.name_display},
            )
            return _back(service)
    return render(
        request,
        "portal/domain_mode.html",
        {"platform": domain.platform, "domain": domain, "form": form},
        status=400 if request.method == "POST" else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def domain_remove(request: HttpRequest, service: str, name: str) -> HttpResponse:
    domain = _own_domain(request, service, name)
    if request.method == "POST":
        services.domain_remove(domain_id=domain.pk, actor=services.actor_for(request.user))
        messages.success(
            request, gettext("%(domain)s is removed.") % {"domain": domain.name_display}
        )
        return _back(service)
    return render(
        request, "portal/domain_remove.html", {"platform": domain.platform, "domain": domain}
    )


@login_required
@require_http_methods(["GET", "POST"])
def domain_confirm(request: HttpRequest, service: str, name: str) -> HttpResponse:
    """Authoritative mode with DNS Assist: the MX records that will be removed, first."""
    domain = _own_domain(request, service, name)
    if domain.assist_status != AssistStatus.TO_CONFIRM:
        return _back(service)
    if request.method == "POST":
        try:
            services.domain_assist_confirm(
                domain_id=domain.pk, actor=services.actor_for(request.user)
            )
        except NotAllowed as refusal:
            messages.info(request, gettext(refusal.message))
        else:
            messages.success(
                request,
                gettext("DNS Assist is writing the records of %(domain)s.")
                % {"domain": domain.name_display},
            )
        return _back(service)
    plan = MailAssistPlan.from_dict(domain.assist_plan)
    removed = [{"name": n, "type": t, "value": v} for n, t, v in plan.removed_records()]
    return render(
        request,
        "portal/domain_confirm.html",
        {"platform": domain.platform, "domain": domain, "removed": removed},
    )


@login_required
@require_http_methods(["POST"])
def domain_assist_retry(request: HttpRequest, service: str, name: str) -> HttpResponse:
    domain = _own_domain(request, service, name)
    try:
        services.domain_assist_retry(domain_id=domain.pk, actor=services.actor_for(request.user))
    except NotAllowed as refusal:
        messages.info(request, gettext(refusal.message))
    return _back(service)


@login_required
@require_http_methods(["GET"])
def domain_zone_file(request: HttpRequest, service: str, name: str) -> HttpResponse:
    domain = _own_domain(request, service, name)
    response = HttpResponse(
        selectors.domain_zone_snippet(domain), content_type="text/plain; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{domain.name}.zone.txt"'
    return response
