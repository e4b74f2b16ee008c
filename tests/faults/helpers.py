"""The customer's side of the flow, ways of holding a worker in the middle of a stage, and
the end-state checks every fault test makes."""

import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage

from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from certificates.models import CertificateOrder
from notifications.models import Email
from provisioning.models import Account, Job, Platform
from tests.conftest import text_body
from tests.faults.smtp import SmtpServer

# Events a platform records once on its way to ready; a second one means work done twice.
ONCE_EVENTS = {
    "ordered",
    "awaiting_setup",
    "configured",
    "certificate_pending",
    "certificate_issued",
    "finalising",
    "ready",
    "email_delivery",
    "email_dns_instructions",
    "email_dcv",
    "email_ready",
    "dns_assisted",
    "dns_instructions_sent",
    "dns_verified",
}


def wait_until(predicate, *, timeout: float = 30.0, what: str = "condition", every: float = 0.1):
    """Poll until predicate() is truthy; returns its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not met within {timeout} s")
        time.sleep(every)


# Holding a worker in the middle of a stage: a concurrent transaction holds the platform's
# row, so the stage's own SELECT ... FOR UPDATE waits; the job is claimed, nothing is
# committed yet, and whatever the stage did outside the database (DNS) is done.


@contextmanager
def platform_locked(platform_id: int) -> Iterator[None]:
    held, release = threading.Event(), threading.Event()
    failure: list[BaseException] = []

    def hold() -> None:
        try:
            with transaction.atomic():
                Platform.objects.select_for_update(no_key=True).get(pk=platform_id)
                held.set()
                release.wait(120)
        except BaseException as error:
            failure.append(error)
            held.set()
        finally:
            connection.close()

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    if not held.wait(10):
        release.set()
        raise AssertionError(f"platform {platform_id}: row lock not obtained within 10 s")
    if failure:
        raise failure[0]
    try:
        yield
    finally:
        release.set()
        thread.join(10)


def lock_waiters() -> int:
    """Database sessions waiting for a row lock (a worker stuck behind platform_locked)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def job_running(platform: Platform, kind: str) -> bool:
    return Job.objects.filter(platform=platform, kind=kind, status="running").exists()


def end_email_leases() -> int:
    """A worker killed while sending holds its email's lease for EMAIL_TIMEOUT * 4 + 60 s;
    move the lease's end to now rather than wait (what the sweep would see a minute later)."""
    return Email.objects.filter(status="running").update(lease_until=timezone.now())


# The customer.


class Customer:
    """A customer in a browser (Django's test client, logged in), reading their email."""

    def __init__(self, account: Account, smtp: SmtpServer) -> None:
        self.account, self.smtp = account, smtp
        self.client = Client()
        self.client.force_login(account.users.get())

    def email(self, platform: Platform, kind: str, *, timeout: float = 30.0) -> EmailMessage:
        """The platform's `kind` email once it arrived over SMTP."""
        return wait_until(
            lambda: next(iter(received(self.smtp, platform=platform, kind=kind)), None),
            timeout=timeout,
            what=f"{kind} email of {platform.service}",
        )

    def configure(
        self,
        platform: Platform,
        *,
        domain: str,
        dns_assist: bool,
        subdomain: str = "exchange",
        local_part: str = "hostmaster",
        client: Client | None = None,
    ):
        """The setup form, opened from the delivery email's link."""
        body = text_body(self.email(platform, "delivery"))
        path = re.search(r"https?://[^/\s]+(/setup/\S+/)", body).group(1)
        return (client or self.client).post(
            path,
            {
                "service": platform.service,
                "subdomain": subdomain,
                "domain": domain,
                "validation_email": local_part,
                "dns_assist": "on" if dns_assist else "",
            },
            follow=True,
        )

    def validate(self, platform: Platform):
        """The code of the validation email, pasted on the page its link opens."""
        body = text_body(self.email(platform, "dcv"))
        code = re.search(r"^\s{4}(\S+)\s*$", body, re.M).group(1)
        path = re.search(r"https?://[^/\s]+(/dcv/\S+/)", body).group(1)
        return self.client.post(path, {"code": code})


# What arrived over SMTP, matched to the outbox rows by Message-ID.


def received(smtp: SmtpServer, *, platform: Platform | None = None, kind: str | None = None):
    """Messages the SMTP server accepted, optionally of one platform and kind."""
    messages = list(smtp.messages)
    rows = Email.objects.in_bulk([m["Message-ID"] for m in messages], field_name="message_id")
    found = []
    for message in messages:
        row = rows.get(message["Message-ID"])
        if row is None:
            continue
        if platform is not None and row.target_id != platform.pk:
            continue
        if kind is not None and row.kind != kind:
            continue
        found.append(message)
    return found


def assert_each_email_once(smtp: SmtpServer, expected: dict[Platform, list[str]]) -> None:
    """Every message accepted once (no Message-ID twice), and each platform's emails of
    these kinds arrived exactly once, and no other."""
    ids = [m["Message-ID"] for m in smtp.messages]
    assert len(ids) == len(set(ids)), f"a message was sent twice: {Counter(ids).most_common(3)}"
    rows = Email.objects.in_bulk(ids, field_name="message_id")
    assert len(rows) == len(ids), "a message the outbox does not know"
    counts = Counter((row.target_id, row.kind) for row in rows.values())
    wanted = Counter({(p.pk, kind): 1 for p, kinds in expected.items() for kind in kinds})
    assert counts == wanted
    # The SMTP server has the message a moment before the worker marks its row sent.
    wait_until(
        lambda: (
            not Email.objects.filter(message_id__in=ids)
            .exclude(status="done", sent_at__isnull=False)
            .exists()
        ),
        timeout=10,
        what="every received email marked sent",
    )


def assert_events_once(platform: Platform) -> None:
    kinds = Counter(platform.events.values_list("kind", flat=True))
    twice = {kind: n for kind, n in kinds.items() if kind in ONCE_EVENTS and n > 1}
    assert not twice, f"{platform.service}: events recorded more than once: {twice}"


def assert_dns_records_once(bind, platform: Platform) -> None:
    """The server name has exactly the platform's A and AAAA on the primary."""
    assert bind.served(platform.server_name, "A") == {platform.ipv4}
    assert bind.served(platform.server_name, "AAAA") == {platform.ipv6}


def assert_certificate_once(platform: Platform) -> None:
    orders = CertificateOrder.objects.filter(server_name=platform.server_name)
    assert [order.pk for order in orders] == [platform.certificate_id]
    assert orders.get().status == "issued"


def assert_nothing_owed_twice(platform: Platform) -> None:
    """One job of each kind ran to its end; none failed, none is still open (DNS checks
    aside, which go on by design when records are not verified, and the certificate's
    renewal, owed from its issuance)."""
    jobs = Counter(
        (job.kind, job.status)
        for job in platform.jobs.exclude(kind__in=["dns_check", "certificate_renew"])
    )
    assert all(status == "done" for _, status in jobs), jobs
    assert all(n == 1 for n in jobs.values()), jobs
