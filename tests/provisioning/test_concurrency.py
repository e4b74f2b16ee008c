"""Address allocation and setup under concurrency, on PostgreSQL's row locks."""

import re
import threading

import pytest
from django.db import IntegrityError, connection, transaction

from notifications.models import Email
from notifications.services import email_send
from provisioning.errors import NotAllowed
from provisioning.models import Platform
from provisioning.services import (
    platform_certificate_request,
    platform_configure,
    platform_dcv_submit,
    platform_deliver,
    platform_order,
)
from provisioning.services.setup import DOMAIN_TAKEN
from tests.conftest import text_body
from tests.factories import AccountFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def run_at_once(functions) -> list:
    barrier = threading.Barrier(len(functions))
    outcomes = [None] * len(functions)

    def run(index, function):
        try:
            barrier.wait()
            outcomes[index] = function()
        except Exception as error:
            outcomes[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, f)) for i, f in enumerate(functions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_concurrent_deliveries_never_share_an_address():
    account = AccountFactory()
    platforms = [platform_order(account=account, actor="test") for _ in range(16)]

    outcomes = run_at_once([lambda p=p: platform_deliver(platform_id=p.pk) for p in platforms])

    assert [o for o in outcomes if isinstance(o, Exception)] == []
    rows = list(Platform.objects.values_list("state", "ipv4", "ipv6"))
    assert {state for state, _, _ in rows} == {"awaiting_setup"}
    assert len({ipv4 for _, ipv4, _ in rows}) == 16
    assert len({ipv6 for _, _, ipv6 in rows}) == 16


def test_the_database_refuses_a_shared_address():
    account = AccountFactory()
    first, second = (platform_order(account=account, actor="test") for _ in range(2))
    platform_deliver(platform_id=first.pk)
    first.refresh_from_db()
    with pytest.raises(IntegrityError), transaction.atomic():
        Platform.objects.filter(pk=second.pk).update(ipv4=first.ipv4)


def test_two_submissions_at_once_one_wins():
    account = AccountFactory()
    platform = platform_order(account=account, actor="test")
    platform_deliver(platform_id=platform.pk)

    def submit(subdomain):
        return lambda: platform_configure(
            platform_id=platform.pk,
            actor="test",
            subdomain=subdomain,
            domain="example.com",
            validation_email="admin@example.com",
            dns_assist=False,
        )

    outcomes = run_at_once([submit("mail"), submit("webmail")])

    assert sum(isinstance(o, Platform) for o in outcomes) == 1
    winner = next(o for o in outcomes if isinstance(o, Platform))
    platform.refresh_from_db()
    assert platform.server_name == winner.server_name
    assert platform.events.filter(kind="configured").count() == 1
    assert [str(o) for o in outcomes if not isinstance(o, Platform)] == [
        "This platform is already configured."
    ]


def test_two_platforms_validated_at_once_on_one_domain(mailbox):
    """Both may wait for validation on a name nobody manages (issue 10.1); validated at
    the same moment, one holds it and the other is told to choose again."""
    account = AccountFactory()
    platforms = [platform_order(account=account, actor="test") for _ in range(2)]
    codes = []
    for platform in platforms:
        platform_deliver(platform_id=platform.pk)
        platform_configure(
            platform_id=platform.pk,
            actor="test",
            subdomain="mail",
            domain="shared.example",
            validation_email="admin@shared.example",
            dns_assist=False,
        )
        platform_certificate_request(platform_id=platform.pk)
        # Sent here, whatever an earlier test left of the broker's settings (a send already
        # made claims nothing twice); then each platform's own validation email.
        for email_id in Email.objects.filter(status="pending").values_list("pk", flat=True):
            email_send(email_id=email_id)
        email = mailbox.wait_for_subject(f"ORDER #{platform.order_number} ")[0]
        codes.append(re.search(r"^\s{4}(\S+)\s*$", text_body(email), re.M).group(1))

    outcomes = run_at_once(
        [
            lambda p=p, c=c: platform_dcv_submit(platform_id=p.pk, code=c, actor="test")
            for p, c in zip(platforms, codes, strict=True)
        ]
    )

    assert sorted(type(o).__name__ for o in outcomes) == ["DcvResult", "NotAllowed"]
    assert [o.message for o in outcomes if isinstance(o, NotAllowed)] == [DOMAIN_TAKEN]
    states = Platform.objects.filter(domain="shared.example").values_list("state", flat=True)
    assert sorted(states) == ["awaiting_setup", "finalising"]
