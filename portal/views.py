"""Customer-facing pages. Views parse, authorise and call one service."""

from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from portal.forms import SetupForm
from provisioning import links, services
from provisioning.models import Platform, PlatformState
from provisioning.selectors import platforms_for_user


@login_required
def home(request: HttpRequest) -> HttpResponse:
    platforms = platforms_for_user(request.user).order_by("-created_at")
    return render(request, "portal/home.html", {"platforms": platforms})


def _link_error(request: HttpRequest, *, expired: bool) -> HttpResponse:
    return render(
        request,
        "portal/link_error.html",
        {"expired": expired},
        status=410 if expired else 400,
    )


@require_http_methods(["GET", "POST"])
def setup(request: HttpRequest, token: str) -> HttpResponse:
    """The delivery email's link: the setup form, then the platform's status."""
    try:
        service = links.service_from_token(token)
    except links.LinkExpired:
        return _link_error(request, expired=True)
    except links.LinkInvalid:
        return _link_error(request, expired=False)
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    try:
        platform = platforms_for_user(request.user).get(service=service)
    except Platform.DoesNotExist:
        raise Http404("No such platform on this account.") from None

    if platform.state != PlatformState.AWAITING_SETUP:
        # Configured already (or not yet delivered): show where it stands, change nothing.
        return render(
            request,
            "portal/status.html",
            {"platform": platform, "just_configured": request.GET.get("done") == "1"},
        )

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
            )
        except services.SetupRefused as refusal:
            if refusal.field is None:
                return redirect(request.path)  # configured meanwhile: show its state
            form.add_error(refusal.field, refusal.message)
        else:
            return redirect(request.path + "?done=1")
    status = 400 if request.method == "POST" else 200
    return render(request, "portal/setup.html", {"platform": platform, "form": form}, status=status)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    return render(request, "portal/csrf_failure.html", status=403)
