"""Password guessing on both logins (django-axes + a per-address limit): variants of a
username count as one, a guesser cannot lock the owner out from elsewhere, and the client
address is read from X-Forwarded-For only behind a trusted proxy."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client, RequestFactory

from portal.ratelimit import client_address
from tests.factories import PASSWORD, AccountFactory

pytestmark = pytest.mark.django_db

NIC = "aa-11111-ovh"
GUESSER = "203.0.113.9"
OWNER = "198.51.100.7"
PROXY = "127.0.0.2"
# Full-width forms (U+FF01..U+FF5E) of the handle's letters, digits and hyphens.
FULL_WIDTH = "".join(chr(ord(char) + 0xFEE0) for char in NIC)
VARIANTS = [" aa-11111-ovh", "aa-11111-ovh ", FULL_WIDTH, "AA-11111-OVH", NIC]


@pytest.fixture
def owner_account(settings):
    settings.AXES_FAILURE_LIMIT = 5
    return AccountFactory(nic=NIC)


def logged_in_user(client: Client):
    from django.contrib.auth import get_user

    return get_user(client)


def test_variants_of_a_username_share_one_counter(owner_account):
    guesser = Client(REMOTE_ADDR=GUESSER)
    statuses = [
        guesser.post("/login/", {"username": name, "password": "guess"}).status_code
        for name in VARIANTS
    ]
    assert statuses == [200, 200, 200, 200, 429]
    # Locked for this name from this address, whatever the spelling and the password.
    response = guesser.post("/login/", {"username": "Aa-11111-Ovh", "password": PASSWORD})
    assert response.status_code == 429
    assert not logged_in_user(guesser).is_authenticated
    from axes.models import AccessAttempt

    assert AccessAttempt.objects.get().username == NIC


@pytest.mark.parametrize("typed", VARIANTS)
def test_every_variant_logs_in_the_same_user(owner_account, typed):
    client = Client()
    response = client.post("/login/", {"username": typed, "password": PASSWORD})
    assert response.status_code == 302
    assert logged_in_user(client) == owner_account.users.get()


def test_a_guesser_cannot_lock_the_owner_out_from_elsewhere(owner_account):
    guesser = Client(REMOTE_ADDR=GUESSER)
    for _ in range(12):
        guesser.post("/login/", {"username": NIC, "password": "guess"})
    assert guesser.post("/login/", {"username": NIC, "password": PASSWORD}).status_code == 429

    owner = Client(REMOTE_ADDR=OWNER)
    assert owner.post("/login/", {"username": NIC, "password": PASSWORD}).status_code == 302
    assert logged_in_user(owner) == owner_account.users.get()


def test_one_address_trying_many_names_is_limited(settings):
    settings.RATELIMITS = {**settings.RATELIMITS, "login": (8, 300)}
    AccountFactory(nic=NIC)
    sprayer = Client(REMOTE_ADDR=GUESSER)
    statuses = [
        sprayer.post("/login/", {"username": f"xx-{n}-ovh", "password": "guess"}).status_code
        for n in range(9)
    ]
    assert statuses == [200] * 8 + [429]
    assert sprayer.post("/login/", {"username": NIC, "password": PASSWORD}).status_code == 429


def test_the_admin_login_is_limited(settings):
    settings.AXES_FAILURE_LIMIT = 5
    get_user_model().objects.create_superuser("root", "root@hoster.example", "right-password")
    guesser = Client(REMOTE_ADDR=GUESSER)
    statuses = [
        guesser.post(
            "/admin/login/", {"username": "root", "password": f"guess-{n}", "next": "/admin/"}
        ).status_code
        for n in range(6)
    ]
    assert statuses == [200] * 4 + [429, 429]
    response = guesser.post(
        "/admin/login/", {"username": "root", "password": "right-password", "next": "/admin/"}
    )
    assert response.status_code == 429
    assert not logged_in_user(guesser).is_authenticated

    # The same superuser from another address is not locked out; a name with capitals
    # still logs in.
    get_user_model().objects.create_superuser("Alice", "alice@hoster.example", "alice-password")
    operator = Client(REMOTE_ADDR=OWNER)
    response = operator.post(
        "/admin/login/", {"username": "root", "password": "right-password", "next": "/admin/"}
    )
    assert response.status_code == 302
    other = Client(REMOTE_ADDR=OWNER)
    response = other.post(
        "/admin/login/", {"username": "Alice", "password": "alice-password", "next": "/admin/"}
    )
    assert response.status_code == 302


@pytest.mark.parametrize(
    ("language", "title", "advice"),
    [
        ("en", "Too many attempts", "Try again in 15 minutes"),
        ("fr", "Trop de tentatives", "Réessayez dans 15 minutes"),
    ],
)
def test_the_lockout_page_explains_and_leads_back(owner_account, language, title, advice):
    guesser = Client(REMOTE_ADDR=GUESSER, HTTP_ACCEPT_LANGUAGE=language)
    for _ in range(5):
        response = guesser.post("/login/", {"username": NIC, "password": "guess"})
    assert response.status_code == 429
    assert response["Retry-After"] == "900"
    page = response.content.decode()
    assert title in page and advice in page
    assert 'href="/login/"' in page


@pytest.mark.parametrize(
    ("remote", "forwarded", "expected"),
    [
        (PROXY, f"{OWNER}", OWNER),
        (PROXY, f"10.9.9.9, {OWNER}", OWNER),  # the left part is the client's own say
        (PROXY, f"{OWNER}, 10.0.0.5", OWNER),  # 10.0.0.0/8 is a trusted hop too
        (PROXY, "", PROXY),
        (PROXY, f"{PROXY}", PROXY),  # nothing but proxies: the nearest one
        (PROXY, "not-an-address", PROXY),
        (GUESSER, OWNER, GUESSER),  # not a trusted proxy: its header is ignored
        ("::ffff:203.0.113.9", "", GUESSER),
    ],
)
def test_client_address(settings, remote, forwarded, expected):
    settings.TRUSTED_PROXIES = [PROXY, "10.0.0.0/8"]
    request = RequestFactory().get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)
    assert client_address(request) == expected


def test_behind_the_proxy_each_client_is_counted_apart(owner_account, settings):
    settings.TRUSTED_PROXIES = [PROXY]
    guesser = Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=GUESSER)
    for _ in range(6):
        guesser.post("/login/", {"username": NIC, "password": "guess"})
    from axes.models import AccessAttempt

    assert AccessAttempt.objects.get().ip_address == GUESSER

    owner = Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=OWNER)
    assert owner.post("/login/", {"username": NIC, "password": PASSWORD}).status_code == 302


def test_a_forged_forwarded_for_changes_nothing(owner_account, settings):
    settings.TRUSTED_PROXIES = [PROXY]
    statuses = [
        Client(REMOTE_ADDR=GUESSER, HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")
        .post("/login/", {"username": NIC, "password": "guess"})
        .status_code
        for n in range(6)
    ]
    assert statuses == [200] * 4 + [429, 429]
