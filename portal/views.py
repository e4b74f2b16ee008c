"""Customer-facing pages. Views parse, authorise and call one service."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.cache import cache
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.translation import gettext
from django.views.decorators.http import require_http_methods

from certificates.downloads import chain_download
from certificates.forms import DcvCodeForm
from certificates.services import DcvOutcome
from outbox.errors import PortalError
from portal import ratelimit
from portal.forms import DcvResendForm, SetupForm, ValidationMethodForm
from provisioning import links, selectors, services
from provisioning.errors import NotAllowed, Refused
from provisioning.models import DnsState, Platform, PlatformState
from provisioning.selectors import platforms_for_user


@login_required
def home(request: HttpRequest) -> HttpResponse:
    # As the guide says, a platform being finalised is not shown until it is ready: only a
    # line saying when it will be.
    finalising = platforms_for_user(request.user).filter(state=PlatformState.FINALISING)
    platforms = (
        selectors.platforms_shown_to(request.user)
        .select_related("certificate")
        .order_by("-created_at")
    )
    for platform in platforms:
        platform.continue_url = (
            reverse("setup", args=[links.setup_token(platform)])
            if platform.state == PlatformState.AWAITING_SETUP
            else reverse("platform", args=[platform.service])
        )
        platform.certificate_flag = selectors.certificate_flag(platform.certificate)
    return render(
        request,
        "portal/home.html",
        {"platforms": platforms, "finalising": finalising.order_by("due_at")},
    )


def _link_error(request: HttpRequest, *, link: str, expired: bool) -> HttpResponse:
    """Why an emailed link (`setup` or `dcv`) cannot be used, and what to do instead."""
    return render(
        request,
        "portal/link_error.html",
        {
            "link": link,
            "expired": expired,
            "setup_link_max_age": settings.SETUP_LINK_MAX_AGE,
            "dcv_link_max_age": settings.DCV_CODE_TTL,
        },
        status=410 if expired else 400,
    )


@require_http_methods(["GET", "POST"])
def setup(request: HttpRequest, token: str) -> HttpResponse:
    """The delivery email's link: the setup form, then the platform's status."""
    try:
        service = links.service_from_token(token)
    except links.LinkExpired:
        return _link_error(request, link="setup", expired=True)
    except links.LinkInvalid:
        return _link_error(request, link="setup", expired=False)
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    try:
        platform = platforms_for_user(request.user).get(service=service)
    except Platform.DoesNotExist:
        raise Http404("No such platform on this account.") from None

    if platform.state == PlatformState.SUSPENDED:
        return _suspended(request, platform)
    if platform.state != PlatformState.AWAITING_SETUP:
        # Configured already: the link now leads to where the platform stands.
        return redirect("platform", service=platform.service)

    form = SetupForm(request.POST or None, platform=platform)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.platform_configure(
                platform_id=platform.pk,
                actor=services.actor_for(request.user),
                subdomain=data["subdomain"],
                domain=data["domain"],
                validation_email=data["validation_email"],
                dns_assist=data["dns_assist"],
                validation_method=data["validation_method"],
            )
        except Refused as refusal:
            if refusal.field is None:  # configured meanwhile: show its state
                return redirect("platform", service=platform.service)
            form.add_error(refusal.field, gettext(refusal.message))
        else:
            return redirect(reverse("platform", args=[platform.service]) + "?configured=1")
    status = 400 if request.method == "POST" else 200
    return render(request, "portal/setup.html", {"platform": platform, "form": form}, status=status)


def _suspended(request: HttpRequest, platform: Platform) -> HttpResponse:
    """A suspended platform is neither configured nor validated: its page says why."""
    messages.error(
        request,
        gettext("This platform is suspended: it cannot be configured or validated for now."),
    )
    return redirect("platform", service=platform.service)


def _own_platform(request: HttpRequest, service: str) -> Platform:
    try:
        return platforms_for_user(request.user).select_related("certificate").get(service=service)
    except Platform.DoesNotExist:
        raise Http404("No such platform on this account.") from None


@login_required
@require_http_methods(["GET"])
def platform_status(request: HttpRequest, service: str) -> HttpResponse:
    platform = _own_platform(request, service)
    awaiting = selectors.certificate_awaiting(platform)
    return render(
        request,
        "portal/status.html",
        {
            "platform": platform,
            "just_configured": request.GET.get("configured") == "1",
            "records": selectors.dns_table(platform),
            "acme_record": selectors.acme_record(platform),
            "awaiting": awaiting,
            "dns_validation_record": selectors.certificate_dns_record(awaiting),
            "certificate_flag": selectors.certificate_flag(platform.certificate),
            "method_form": ValidationMethodForm(),
            "resend_form": DcvResendForm(platform=platform),
            "finalisation_delay": settings.FINALISATION_DELAY,
            "dns_check_interval": settings.DNS_CHECK_INTERVAL,
            "dns_check_max_interval": settings.DNS_CHECK_MAX_INTERVAL,
        },
    )


@login_required
@require_http_methods(["POST"])
def platform_check_dns(request: HttpRequest, service: str) -> HttpResponse:
    platform = _own_platform(request, service)
    if not selectors.dns_check_allowed(platform):
        messages.info(
            request, gettext("The records were checked a few seconds ago; try again shortly.")
        )
    else:
        try:
            platform = services.platform_dns_check_now(
                platform_id=platform.pk, actor=services.actor_for(request.user)
            )
        except NotAllowed as refusal:
            messages.error(request, gettext(refusal.message))
        except PortalError as error:
            messages.error(
                request,
                gettext("The check could not be completed: %(reason)s") % {"reason": error.message},
            )
        else:
            if platform.dns_state == DnsState.VERIFIED:
                messages.success(request, gettext("Your DNS records are correct."))
            else:
                messages.warning(
                    request, gettext("Some records are still missing or wrong: see below.")
                )
    return redirect("platform", service=service)


@login_required
@require_http_methods(["POST"])
def platform_dcv_resend(request: HttpRequest, service: str) -> HttpResponse:
    platform = _own_platform(request, service)
    form = DcvResendForm(request.POST, platform=platform)
    if not form.is_valid():
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
        return redirect("platform", service=service)
    wait = ratelimit.dcv_resend_wait(platform_id=platform.pk, account_id=platform.account_id)
    if wait:
        messages.error(request, ratelimit.try_again_message(wait))
        return redirect("platform", service=service)
    try:
        services.platform_dcv_resend(
            platform_id=platform.pk,
            actor=services.actor_for(request.user),
            address=form.cleaned_data["validation_email"] or None,
        )
    except PortalError as error:
        messages.error(request, gettext(str(error)))
    else:
        messages.success(
            request,
            gettext(
                "A new validation e-mail is on its way to %(address)s. "
                "Codes from earlier e-mails no longer work."
            )
            % {"address": form.cleaned_data["validation_email"] or platform.validation_email},
        )
    return redirect("platform", service=service)


@login_required
@require_http_methods(["POST"])
def platform_validation_method(request: HttpRequest, service: str) -> HttpResponse:
    """The customer switches the validation of the certificate waiting (email / DNS)."""
    platform = _own_platform(request, service)
    form = ValidationMethodForm(request.POST)
    if not form.is_valid():
        messages.error(request, gettext("Choose e-mail or DNS record."))
        return redirect("platform", service=service)
    method = form.cleaned_data["validation_method"]
    try:
        services.platform_validation_method_change(
            platform_id=platform.pk, method=method, actor=services.actor_for(request.user)
        )
    except PortalError as error:
        messages.error(request, gettext(error.message))
    else:
        messages.success(
            request,
            gettext("A new validation e-mail is on its way to %(address)s.")
            % {"address": platform.validation_email}
            if method == "email"
            else gettext(
                "Add the TXT record shown below to your zone: the certificate is issued as "
                "soon as we find it."
            ),
        )
    return redirect("platform", service=service)


@login_required
@require_http_methods(["POST"])
def platform_check_certificate_dns(request: HttpRequest, service: str) -> HttpResponse:
    """The customer's "check now" of the certificate's TXT record (at most one every few
    seconds: each asks the zone's servers)."""
    platform = _own_platform(request, service)
    if not cache.add(
        f"certificate-dns-check:{platform.pk}", True, timeout=selectors.DNS_CHECK_NOW_SPACING
    ):
        messages.info(
            request, gettext("The record was checked a few seconds ago; try again shortly.")
        )
        return redirect("platform", service=service)
    try:
        issued = services.platform_certificate_dns_check_now(
            platform_id=platform.pk, actor=services.actor_for(request.user)
        )
    except PortalError as error:
        messages.error(
            request,
            gettext("The check could not be completed: %(reason)s") % {"reason": error.message},
        )
    else:
        if issued:
            messages.success(request, gettext("The record was found: the certificate is issued."))
        else:
            messages.warning(
                request, gettext("The record is not served yet: check it and try again later.")
            )
    return redirect("platform", service=service)


@login_required
@require_http_methods(["GET"])
def platform_chain(request: HttpRequest, service: str) -> HttpResponse:
    return chain_download(order=_own_platform(request, service).certificate)


@require_http_methods(["GET", "POST"])
def dcv(request: HttpRequest, order_number: int, token: str) -> HttpResponse:
    """The validation email's link: paste the code, Next, valid or invalid, Close window."""
    try:
        service = links.service_from_dcv_token(token, order_number=order_number)
    except links.LinkExpired:
        return _link_error(request, link="dcv", expired=True)
    except links.LinkInvalid:
        return _link_error(request, link="dcv", expired=False)
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    platform = _own_platform(request, service)
    if platform.state == PlatformState.SUSPENDED:
        return _suspended(request, platform)
    form = DcvCodeForm(request.POST or None)
    result = None
    if request.method == "POST" and form.is_valid():
        try:
            result = services.platform_dcv_submit(
                platform_id=platform.pk,
                code=form.cleaned_data["code"],
                actor=services.actor_for(request.user),
            )
        except NotAllowed as refusal:
            form.add_error(None, gettext(refusal.message))
        if result is not None and result.outcome == DcvOutcome.INVALID:
            # A wrong code is an error of its field: marked invalid, the message tied to it.
            form.add_error("code", gettext("This code is not valid."))
        platform.refresh_from_db()
    status = 200 if result is None or result.outcome == "valid" else 400
    if request.method == "POST" and result is None:
        status = 400
    return render(
        request,
        "certificates/dcv.html",
        {
            "platform": platform,
            "form": form,
            "result": result,
            "order": selectors.certificate_awaiting(platform) or platform.certificate,
            "close_url": reverse("platform", args=[platform.service]),
            "new_code_url": reverse("platform-dcv-resend", args=[platform.service]),
        },
        status=status,
    )


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    return render(request, "portal/csrf_failure.html", status=403)


class PasswordSetView(auth_views.PasswordResetConfirmView):
    """The link of the account's first email (provisioning.services.accounts): Django's
    password-reset token, the password validators, then the login page."""

    template_name = "portal/set_password.html"
    success_url = reverse_lazy("login")
    post_reset_login = False

    def form_valid(self, form):
        messages.success(self.request, gettext("Your password is set: log in with it."))
        return super().form_valid(form)
