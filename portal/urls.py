from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import HttpRequest
from django.urls import include, path

from certificates import views as certificate_views
from certificates.forms import DcvCodeForm
from portal import api, domains, views
from portal.auth import AdminLoginForm, LoginForm
from portal.ratelimit import ratelimit
from provisioning import links

# Guessing validation codes is slowed per client address and per target. Logins are limited
# per client address here, and per (user name, address) by django-axes (portal.auth).
admin.site.login_form = AdminLoginForm
login = ratelimit("login")(auth_views.LoginView.as_view(authentication_form=LoginForm))
admin_login = ratelimit("login")(admin.site.login)


def _dcv_attempt(request: HttpRequest, kwargs: dict) -> bool:
    """An attempt at a code, as the validation page counts them: a code its form can read
    (a malformed paste is not one), by a logged-in customer through a genuine link (a
    stranger cannot use up the owner's attempts)."""
    if not request.user.is_authenticated:
        return False
    try:
        links.service_from_dcv_token(kwargs["token"], order_number=kwargs["order_number"])
    except (links.LinkInvalid, links.LinkExpired):
        return False
    return DcvCodeForm(request.POST).is_valid()


dcv = ratelimit(
    "dcv", per_target=lambda request, kwargs: kwargs["order_number"], counts=_dcv_attempt
)(views.dcv)

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", login, name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("setup/<str:token>/", views.setup, name="setup"),
    path("platforms/<str:service>/", views.platform_status, name="platform"),
    path("platforms/<str:service>/check-dns/", views.platform_check_dns, name="platform-check-dns"),
    path(
        "platforms/<str:service>/resend-validation/",
        views.platform_dcv_resend,
        name="platform-dcv-resend",
    ),
    path(
        "platforms/<str:service>/certificate-chain.pem", views.platform_chain, name="platform-chain"
    ),
    path("platforms/<str:service>/domains/", domains.domains, name="platform-domains"),
    path(
        "platforms/<str:service>/domains/<str:name>/check/",
        domains.domain_check,
        name="domain-check",
    ),
    path(
        "platforms/<str:service>/domains/<str:name>/mode/", domains.domain_mode, name="domain-mode"
    ),
    path(
        "platforms/<str:service>/domains/<str:name>/remove/",
        domains.domain_remove,
        name="domain-remove",
    ),
    path(
        "platforms/<str:service>/domains/<str:name>/confirm/",
        domains.domain_confirm,
        name="domain-confirm",
    ),
    path(
        "platforms/<str:service>/domains/<str:name>/retry/",
        domains.domain_assist_retry,
        name="domain-retry",
    ),
    path(
        "platforms/<str:service>/domains/<str:name>/zone.txt",
        domains.domain_zone_file,
        name="domain-zone-file",
    ),
    path(
        "platforms/<str:service>/validation-method/",
        views.platform_validation_method,
        name="platform-validation-method",
    ),
    path(
        "platforms/<str:service>/check-certificate-dns/",
        views.platform_check_certificate_dns,
        name="platform-check-certificate-dns",
    ),
    path("dcv/<int:order_number>/<str:token>/", dcv, name="dcv"),
    path("api/", include((api.urlpatterns, "api"), namespace="api")),
    path(
        "account/set-password/<uidb64>/<token>/",
        views.PasswordSetView.as_view(),
        name="password-set",
    ),
    path("admin/login/", admin_login),
    path("admin/", admin.site.urls),
    path("ca/intermediate.crl", certificate_views.intermediate_crl, name="ca-crl"),
    path("", include("operations.urls")),
]
