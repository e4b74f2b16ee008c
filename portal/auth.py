"""Logging in: one form of a username for authentication and for counting failures.

Django's login form already strips the username and applies NFKC (``UsernameField``, as
``AbstractBaseUser.normalize_username`` does when a user is created); our usernames are
lower-case NIC handles, so the login also case-folds. Counting failures on that same form
means " aa-11111-ovh", "AA-11111-OVH" and full-width letters are one name to django-axes."""

import unicodedata

from axes.backends import AxesStandaloneBackend
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest


def normalise_username(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip().casefold()


def axes_username(request: HttpRequest, credentials: dict | None) -> str:
    """AXES_USERNAME_CALLABLE: the name the failure counts against."""
    username = (credentials or {}).get("username")
    if username is None and request is not None:
        username = request.POST.get("username", "")
    return normalise_username(username or "")


class LoginForm(AuthenticationForm):
    def clean_username(self) -> str:
        return normalise_username(self.cleaned_data["username"])


class AdminLoginForm(AdminAuthenticationForm):
    def clean_username(self) -> str:
        return normalise_username(self.cleaned_data["username"])


class LoginAttemptsBackend(AxesStandaloneBackend):
    """django-axes' lockout check for every login made from a request. Authentication
    without one (a management command, a shell) is not a login over the web: nothing to
    count, and axes would refuse it."""

    def authenticate(self, request: HttpRequest | None, *args, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, *args, **kwargs)


class CaseInsensitiveModelBackend(ModelBackend):
    """The login form case-folds; staff users created with capitals (``createsuperuser``)
    still log in. Two users differing only by case match neither: no guess between them."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        model = get_user_model()
        if username is None:
            username = kwargs.get(model.USERNAME_FIELD)
        if username is None or password is None:
            return None
        matches = list(
            model._default_manager.filter(**{f"{model.USERNAME_FIELD}__iexact": username})[:2]
        )
        if len(matches) != 1:
            # Hash anyway, as ModelBackend does, so the answer takes as long either way.
            model().set_password(password)
            return None
        user = matches[0]
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None
