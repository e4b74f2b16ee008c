"""Logging in: one form of a username for authentication and for counting failures.

Django's login form already strips the username and applies NFKC (``UsernameField``, as
``AbstractBaseUser.normalize_username`` does when a user is created); our usernames are
lower-case NIC handles, so the login also case-folds. Counting failures on that same form
means " aa-11111-ovh", "AA-11111-OVH" and full-width letters are one name to django-axes."""

import functools
import unicodedata

from axes.backends import AxesStandaloneBackend
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.db import connection, connections
from django.http import HttpRequest

from provisioning.models import Account


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


class UserWithLanguage:
    """get_user in one query: the user and the language of their first account
    (``account_language``, None without one), which portal.middleware activates. Each
    request still reads the user afresh: a password change, a deactivation or a new
    language takes effect at the next request.

    Every logged-in request runs it, so its SQL is written once (``_user_sql``) rather
    than compiled by the ORM each time: that compilation cost more than the query."""

    def get_user(self, user_id):
        model = get_user_model()
        sql, fields = _user_sql()
        try:
            user_id = model._meta.pk.to_python(user_id)
        except ValidationError:
            return None
        with connections[model._default_manager.db].cursor() as cursor:
            cursor.execute(sql, [user_id])
            row = cursor.fetchone()
        if row is None:
            return None
        user = model.from_db(model._default_manager.db, fields, row[:-1])
        user.account_language = row[-1]
        return user if self.user_can_authenticate(user) else None


@functools.cache
def _user_sql() -> tuple[str, list[str]]:
    """The user's columns and their first account's language, for one user id."""
    model = get_user_model()
    quote = connection.ops.quote_name
    fields = [field.attname for field in model._meta.concrete_fields]
    columns = ", ".join(f"u.{quote(f.column)}" for f in model._meta.concrete_fields)
    through = Account.users.through._meta
    account_column = quote(through.get_field("account").column)
    user_column = quote(through.get_field(model._meta.model_name).column)
    # Names from the models, quoted; the id is a parameter.
    language = (
        f"SELECT a.{quote('language')} FROM {quote(Account._meta.db_table)} a "  # noqa: S608
        f"JOIN {quote(through.db_table)} m ON m.{account_column} = a.{quote('id')} "
        f"WHERE m.{user_column} = u.{quote(model._meta.pk.column)} "
        f"ORDER BY a.{quote('id')} LIMIT 1"
    )
    table, pk = quote(model._meta.db_table), quote(model._meta.pk.column)
    sql = f"SELECT {columns}, ({language}) FROM {table} u WHERE u.{pk} = %s"  # noqa: S608
    return sql, fields


class LoginAttemptsBackend(AxesStandaloneBackend):
    """django-axes' lockout check for every login made from a request. Authentication
    without one (a management command, a shell) is not a login over the web: nothing to
    count, and axes would refuse it."""

    def authenticate(self, request: HttpRequest | None, *args, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, *args, **kwargs)


class CaseInsensitiveModelBackend(UserWithLanguage, ModelBackend):
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
