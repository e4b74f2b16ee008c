from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path

from portal import api, views

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
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
    path("dcv/<int:order_number>/<str:token>/", views.dcv, name="dcv"),
    path("api/orders/", api.orders, name="api-orders"),
    path("api/orders/<str:service>/", api.order_detail, name="api-order-detail"),
    path("admin/", admin.site.urls),
]
