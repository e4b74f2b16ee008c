from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from portal import api, views
from portal.ratelimit import ratelimit

# Guessing passwords or validation codes is slowed per client address and per target.
login = ratelimit(
    "login", per_target=lambda request, kwargs: request.POST.get("username", "")[:150].lower()
)(auth_views.LoginView.as_view())
dcv = ratelimit("dcv", per_target=lambda request, kwargs: kwargs["order_number"])(views.dcv)
orders = ratelimit("api", methods=("GET", "POST"), json=True)(api.orders)
order_detail = ratelimit("api", methods=("GET", "POST"), json=True)(api.order_detail)

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
    path("dcv/<int:order_number>/<str:token>/", dcv, name="dcv"),
    path("api/orders/", orders, name="api-orders"),
    path("api/orders/<str:service>/", order_detail, name="api-order-detail"),
    path("admin/", admin.site.urls),
    path("", include("operations.urls")),
]
