"""The customer pages speak the language of the logged-in customer's account."""

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import translation

_UNREAD = object()


class AccountLanguageMiddleware:
    """Activates the language of the user's first account (Account.language).

    Placed after AuthenticationMiddleware. Anonymous users, and users without an account
    (operators), keep LocaleMiddleware's choice: the browser's Accept-Language."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.supported = {code for code, _name in settings.LANGUAGES}

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            # Read with the user by portal.auth.UserWithLanguage (the query otherwise).
            language = getattr(user, "account_language", _UNREAD)
            if language is _UNREAD:
                language = user.accounts.order_by("pk").values_list("language", flat=True).first()
            if language in self.supported:
                translation.activate(language)
                request.LANGUAGE_CODE = language
        return self.get_response(request)
