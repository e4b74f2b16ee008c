from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path

from portal import api, views

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("setup/<str:token>/", views.setup, name="setup"),
    path("api/orders/", api.orders, name="api-orders"),
    path("api/orders/<str:service>/", api.order_detail, name="api-order-detail"),
    path("admin/", admin.site.urls),
]
