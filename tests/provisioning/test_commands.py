import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import CommandError, call_command

from provisioning.models import Account, Platform
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def test_create_account_with_login_and_zones(capsys):
    call_command(
        "create_account",
        "xx-11111-ovh",
        "--email",
        "ref@customer.example",
        "--password",
        "s3cret-pass",
        "--zone",
        "example.com",
        "--zone",
        "Exemple-Café.fr",
        "--language",
        "en",
    )
    account = Account.objects.get(nic="xx-11111-ovh")
    assert account.email == "ref@customer.example" and account.language == "en"
    assert sorted(account.zones.values_list("name", flat=True)) == [
        "example.com",
        "xn--exemple-caf-lbb.fr",
    ]
    user = authenticate(username="xx-11111-ovh", password="s3cret-pass")
    assert user is not None and account.users.filter(pk=user.pk).exists()
    assert "Account xx-11111-ovh created" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["Bad Nic!", "--email", "a@b.example", "--password", PASSWORD], "NIC handle"),
        (["xx-1-ovh", "--email", "not-an-email", "--password", PASSWORD], "not a valid e-mail"),
        (
            ["xx-1-ovh", "--email", "a@b.example", "--password", PASSWORD, "--zone", "bad..zone"],
            "empty labels",
        ),
    ],
)
def test_create_account_bad_input(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("create_account", *args)
    assert not Account.objects.exists()


def test_create_account_twice_is_refused():
    call_command("create_account", "xx-1-ovh", "--email", "a@b.example", "--password", PASSWORD)
    with pytest.raises(CommandError, match="already exists"):
        call_command("create_account", "xx-1-ovh", "--email", "a@b.example", "--password", PASSWORD)


def test_place_order_prints_the_service_name(capsys):
    call_command("create_account", "xx-1-ovh", "--email", "a@b.example", "--password", PASSWORD)
    capsys.readouterr()
    call_command("place_order", "xx-1-ovh")
    service = capsys.readouterr().out.strip()
    platform = Platform.objects.get()
    assert service == platform.service
    assert platform.state == "ordered" and platform.jobs.get().kind == "deliver"


def test_place_order_for_an_unknown_account():
    with pytest.raises(CommandError, match="No account"):
        call_command("place_order", "xx-404-ovh")


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("x", "too short"),
        ("password1234", "too common"),
        ("8264093517", "entirely numeric"),
        ("xx-1-ovh99", "too similar"),
    ],
)
def test_create_account_refuses_a_weak_password(password, message):
    with pytest.raises(CommandError, match=message):
        call_command("create_account", "xx-1-ovh", "--email", "a@b.example", "--password", password)
    assert not Account.objects.exists()
    assert not get_user_model().objects.exists()
