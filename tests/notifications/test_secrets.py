"""Live secrets at rest (issue 10.3): the validation code and the tokens of the setup and
validation links reach the recipient over SMTP, but neither the database nor staff in
admin ever read them in clear; what is not yet sent is kept encrypted, then dropped."""

import io
import re

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone

from certificates import selectors as certificate_selectors
from notifications.models import Email
from notifications.services import MASK, Secret
from outbox.encryption import decrypt
from provisioning.models import Platform
from tests.certificates.factories import CertificateOrderFactory
from tests.conftest import html_body, text_body
from tests.factories import AccountFactory
from tests.helpers import work_off

pytestmark = pytest.mark.django_db
DOMAIN = "secret.example"
EMAIL_ADMIN = "/admin/notifications/email/"
PLATFORM_ADMIN = "/admin/provisioning/platform/"


def database_text() -> str:
    """Every value of every table, as raw SQL reads it (what a database dump shows)."""
    values = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            # The database's own table names, quoted: nothing from outside.
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            values.extend(str(value) for row in cursor.fetchall() for value in row)
    return "\n".join(values)


def email_table_text() -> str:
    """The email rows' text columns, read with raw SQL."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT subject, body_text, body_html, last_error FROM notifications_email")
        return "\n".join(str(value) for row in cursor.fetchall() for value in row)


def link_path(message, pattern: str) -> str:
    return re.search(rf"https?://[^/\s]+({pattern}[^/\s]+/)", text_body(message)).group(1)


def secrets_of(delivery, validation) -> list[str]:
    """What must never be stored in clear: the code (as shown and as typed without dashes),
    each link's token and the token's signature alone."""
    code = re.search(r"^\s{4}(\S+)\s*$", text_body(validation), re.M).group(1)
    setup_token = link_path(delivery, "/setup/").split("/")[2]
    dcv_token = link_path(validation, r"/dcv/\d+/").split("/")[3]
    found = [code, code.replace("-", ""), setup_token, dcv_token]
    return found + [token.rsplit(":", 1)[1] for token in (setup_token, dcv_token)]


def setup_form(platform) -> dict:
    """mail.secret.example, validated by email to admin@, without DNS Assist."""
    return {
        "service": platform.service,
        "subdomain": "mail",
        "domain": DOMAIN,
        "validation_email": "admin",
        "dns_assist": "",
    }


def send_held_emails(mailbox) -> None:
    """The SMTP server accepts again; the emails it refused go out now."""
    mailbox.reply = None
    Email.objects.filter(status="pending").update(due_at=timezone.now())
    work_off()


@pytest.fixture
def customer(bind, settings):
    bind.configure(settings)
    account = AccountFactory(language="en")
    client = Client()
    client.force_login(account.users.get())
    return account, client


def test_secrets_are_masked_at_rest_before_and_after_sending(customer, mailbox):
    account, client = customer
    snapshots = {}

    # Queued while the SMTP server refuses for now: the delivery email waits, unsent.
    mailbox.reply = "451 4.3.0 Try again later"
    from provisioning.services import platform_order

    platform = platform_order(account=account, actor="test")
    work_off()
    delivery_row = Email.objects.get(kind="delivery")
    assert delivery_row.status == "pending" and delivery_row.unmasked_encrypted
    assert MASK in delivery_row.body_text and MASK in delivery_row.body_html
    snapshots["delivery queued"] = database_text()
    send_held_emails(mailbox)
    snapshots["delivery sent"] = database_text()
    [delivery] = mailbox.with_subject("is being delivered")

    # The link received works: the customer sets the platform up through it.
    setup_path = link_path(delivery, "/setup/")
    assert 'name="subdomain"' in client.get(setup_path).content.decode()
    mailbox.reply = "451 4.3.0 Try again later"
    response = client.post(
        setup_path,
        setup_form(platform),
    )
    assert response.status_code == 302
    work_off()
    assert Email.objects.get(kind="dcv").status == "pending"
    snapshots["validation queued"] = database_text()
    send_held_emails(mailbox)
    snapshots["validation sent"] = database_text()
    [validation] = mailbox.with_subject("Domain Control Validation")

    secrets = secrets_of(delivery, validation)
    for moment, stored in snapshots.items():
        for secret in secrets:
            assert secret not in stored, f"{secret} readable in the database ({moment})"
    for email in Email.objects.all():  # sent: nothing live is kept, even encrypted
        assert email.status == "done" and email.unmasked_encrypted == ""
    stored_emails = email_table_text()
    assert stored_emails.count(MASK) >= 4  # code and link in the text and HTML bodies

    # The code and the link received are the real ones: the certificate is validated.
    code = re.search(r"^\s{4}(\S+)\s*$", text_body(validation), re.M).group(1)
    assert code in html_body(validation)
    page = client.post(link_path(validation, r"/dcv/\d+/"), {"code": code}).content.decode()
    assert "The code is valid" in page
    assert Platform.objects.get(pk=platform.pk).state == "finalising"


def test_a_failed_login_from_the_emailed_link_stores_no_token(mailbox):
    """The link leads to the login page with the link in `next`; the failed logins counted
    in the database (django-axes) keep the query and the form, but not that."""
    from provisioning.services import platform_order

    account = AccountFactory(language="en")
    platform_order(account=account, actor="test")
    work_off()
    [delivery] = mailbox.with_subject("is being delivered")
    setup_path = link_path(delivery, "/setup/")
    client = Client()
    login_url = client.get(setup_path)["Location"]
    page = client.post(
        login_url, {"username": account.nic, "password": "wrong", "next": setup_path}
    )
    assert page.status_code == 200 and setup_path in page.content.decode()
    token = setup_path.split("/")[2]
    stored = database_text()
    assert account.nic in stored  # the failure was counted
    assert token not in stored and token.rsplit(":", 1)[1] not in stored


@pytest.fixture
def staff_clients(db):
    support = get_user_model().objects.create_user("sam", "sam@hoster.example", "pw", is_staff=True)
    support.groups.add(Group.objects.get(name="Support"))
    operator = get_user_model().objects.create_superuser("olga", "olga@hoster.example", "pw")
    clients = {}
    for user in (support, operator):
        clients[user.username] = Client()
        clients[user.username].force_login(user)
    return clients


def test_staff_see_the_emails_with_their_secrets_masked(customer, mailbox, staff_clients):
    account, client = customer
    from provisioning.services import platform_order

    platform = platform_order(account=account, actor="test")
    work_off()
    [delivery] = mailbox.with_subject("is being delivered")
    client.post(link_path(delivery, "/setup/"), setup_form(platform))
    work_off()
    [validation] = mailbox.with_subject("Domain Control Validation")
    secrets = secrets_of(delivery, validation)

    for name, staff in staff_clients.items():
        pages = {
            "emails": staff.get(EMAIL_ADMIN),
            "platform": staff.get(f"{PLATFORM_ADMIN}{platform.pk}/change/"),
        }
        for email in Email.objects.all():
            pages[email.kind] = staff.get(f"{EMAIL_ADMIN}{email.pk}/change/")
        for page, response in pages.items():
            assert response.status_code == 200, (name, page)
            content = response.content.decode()
            for secret in secrets:
                assert secret not in content, f"{secret} shown to {name} on {page}"
        for kind in ("delivery", "dcv"):  # the preview and the text, masked
            assert pages[kind].content.decode().count(MASK) >= 2, (name, kind)

    # Nothing live was kept once sent, yet Support's resend carries a real, new code.
    staff_clients["sam"].post(
        f"{PLATFORM_ADMIN}{platform.pk}/resend/", {"kind": "dcv", "address": f"admin@{DOMAIN}"}
    )
    work_off()
    resent = mailbox.with_subject("Domain Control Validation")[-1]
    new_code = re.search(r"^\s{4}(\S+)\s*$", text_body(resent), re.M).group(1)
    assert new_code not in secrets and new_code not in database_text()
    page = client.post(link_path(resent, r"/dcv/\d+/"), {"code": new_code}).content.decode()
    assert "The code is valid" in page


def test_an_email_not_yet_sent_survives_a_key_rotation(customer, mailbox, settings):
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEY = [old_key]
    account, _ = customer
    mailbox.reply = "451 4.3.0 Try again later"
    from provisioning.services import platform_order

    platform_order(account=account, actor="test")
    work_off()
    before = Email.objects.get(kind="delivery").unmasked_encrypted

    settings.FIELD_ENCRYPTION_KEY = [new_key, old_key]
    call_command("rotate_encryption_keys", stdout=io.StringIO())
    settings.FIELD_ENCRYPTION_KEY = [new_key]  # the old key is gone
    after = Email.objects.get(kind="delivery").unmasked_encrypted
    assert after != before and decrypt(after) == Fernet(old_key).decrypt(before.encode())

    send_held_emails(mailbox)
    [delivery] = mailbox.with_subject("is being delivered")
    assert "/setup/" + MASK not in text_body(delivery)
    assert Email.objects.get(kind="delivery").status == "done"


def test_an_email_no_key_opens_fails_visibly_and_keeps_nothing(customer, mailbox, settings):
    settings.FIELD_ENCRYPTION_KEY = [Fernet.generate_key().decode()]
    account, _ = customer
    mailbox.reply = "451 4.3.0 Try again later"
    from provisioning.services import platform_order

    platform_order(account=account, actor="test")
    work_off()
    settings.FIELD_ENCRYPTION_KEY = [Fernet.generate_key().decode()]  # removed too soon
    send_held_emails(mailbox)
    email = Email.objects.get(kind="delivery")
    assert email.status == "failed" and "FIELD_ENCRYPTION_KEY" in email.last_error
    assert email.unmasked_encrypted == "" and mailbox.messages == []


def test_a_dns_validation_value_is_never_stored_in_clear():
    order = CertificateOrderFactory(method="dns")
    record = certificate_selectors.dns_validation_record(order=order)
    assert record.value and record.value not in database_text()


def test_a_secret_masks_its_hidden_part_or_refuses_to_be_made():
    link = Secret("https://portal.example/setup/t0ken/", hidden="t0ken")
    assert link.masked == f"https://portal.example/setup/{MASK}/"
    assert Secret("7K2QD-9XH4M").masked == MASK
    with pytest.raises(ValueError):
        Secret("https://portal.example/setup/t0ken/", hidden="another")
