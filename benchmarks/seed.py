"""Fill the database of DATABASE_URL with N platforms of a year's business, in bulk.

Not through the flow (that would take hours): rows are written as the flow leaves them.
Per 100 platforms: 80 ready, 2 finalising, 6 waiting for the certificate's validation,
6 waiting for the customer's setup, 2 failed, 4 cancelled; one account per 5 platforms,
each with a login and a zone. Every platform carries its finished jobs, its sent emails
(short bodies) and its timeline; 1 in 20 configured platforms still has its DNS check
owed, due within the next hours (records not found yet), and the finalising ones their
finalisation. So nothing seeded is due while a benchmark runs: the work due is only what
the benchmark itself makes.

    DATABASE_URL=postgres://…/db python -m benchmarks.seed --platforms 100000
"""

import argparse
import os
import time
from datetime import timedelta

CHUNK = 5_000
PLATFORMS_PER_ACCOUNT = 5
YEAR = timedelta(days=365)


def _state(i: int) -> str:
    slot = i % 100
    if slot < 80:
        return "ready"
    if slot < 82:
        return "finalising"
    if slot < 88:
        return "certificate_pending"
    if slot < 94:
        return "awaiting_setup"
    if slot < 96:
        return "failed"
    return "cancelled"


CONFIGURED = {"ready", "finalising", "certificate_pending", "failed"}
TEXT = "Bonjour,\n\nVotre service Private Exchange est prêt.\n" * 12
HTML = "<p>Bonjour,</p><p>Votre service Private Exchange est <b>prêt</b>.</p>\n" * 12


def seed(count: int) -> None:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.contrib.contenttypes.models import ContentType
    from django.db import transaction
    from django.utils import timezone

    from certificates.models import CertificateOrder
    from notifications.models import Email
    from provisioning import addresses
    from provisioning.models import Account, Job, Platform, PlatformEvent, Zone

    User = get_user_model()
    ipv4 = addresses.ipv4_pool()
    ipv6 = addresses.ipv6_pool()
    now = timezone.now()
    platform_type = ContentType.objects.get_for_model(Platform)
    unusable = make_password(None)
    spacing = YEAR / max(count, 1)

    for start in range(0, count, CHUNK):
        stop = min(start + CHUNK, count)
        with transaction.atomic():
            first_account = start // PLATFORMS_PER_ACCOUNT
            last_account = (stop - 1) // PLATFORMS_PER_ACCOUNT
            numbers = range(first_account, last_account + 1)
            existing = set(
                Account.objects.filter(nic__in=[_nic(k) for k in numbers]).values_list(
                    "nic", flat=True
                )
            )
            fresh = [k for k in numbers if _nic(k) not in existing]
            users = User.objects.bulk_create(
                [User(username=_nic(k), email=_email(k), password=unusable) for k in fresh]
            )
            accounts = Account.objects.bulk_create(
                [
                    Account(nic=_nic(k), email=_email(k), language="fr" if k % 3 else "en")
                    for k in fresh
                ]
            )
            Account.users.through.objects.bulk_create(
                [
                    Account.users.through(account_id=a.pk, user_id=u.pk)
                    for a, u in zip(accounts, users, strict=True)
                ]
            )
            Zone.objects.bulk_create(
                [Zone(account=a, name=_zone(k)) for a, k in zip(accounts, fresh, strict=True)]
            )
            account_ids = dict(
                Account.objects.filter(nic__in=[_nic(k) for k in numbers]).values_list("nic", "pk")
            )

            states = {i: _state(i) for i in range(start, stop)}
            orders = {}
            for i in range(start, stop):
                if states[i] in CONFIGURED:
                    orders[i] = CertificateOrder(
                        server_name=_server(i),
                        validation_email=f"postmaster@{_domain(i)}",
                        order_number=_order_number(i),
                        backend="acme" if i % 20 == 7 else "internal",
                        key_type="rsa2048",
                        key_encrypted="seeded",
                        csr_pem="seeded",
                        status="issued" if states[i] in ("ready", "finalising") else "pending",
                        serial=f"{i:032x}" if states[i] in ("ready", "finalising") else "",
                    )
            CertificateOrder.objects.bulk_create(orders.values())

            platforms = []
            for i in range(start, stop):
                state = states[i]
                created = now - YEAR + spacing * i - timedelta(hours=6)
                configured = state in CONFIGURED
                mismatch = configured and i % 20 == 3
                platforms.append(
                    Platform(
                        account_id=account_ids[_nic(i // PLATFORMS_PER_ACCOUNT)],
                        service=f"pex-s{i:07d}",
                        order_number=_order_number(i),
                        state=state,
                        failed_from="certificate_pending" if state == "failed" else "",
                        failure_reason="CA rejected the request" if state == "failed" else "",
                        domain=_domain(i) if configured else "",
                        server_name=_server(i) if configured else "",
                        validation_email=f"postmaster@{_domain(i)}" if configured else "",
                        dns_assist=configured and i % 2 == 0,
                        dns_state=(
                            "pending" if not configured else "mismatch" if mismatch else "verified"
                        ),
                        ipv4=ipv4.address_at(i),
                        ipv6=ipv6.address_at(i),
                        dns_records=[],
                        dns_checked_at=created + timedelta(minutes=5) if configured else None,
                        certificate=orders.get(i),
                        created_at=created,
                        state_changed_at=created + timedelta(hours=5),
                        configured_at=created + timedelta(minutes=3) if configured else None,
                        ready_at=created + timedelta(hours=5) if state == "ready" else None,
                        due_at=now + timedelta(hours=1 + i % 3) if state == "finalising" else None,
                    )
                )
            Platform.objects.bulk_create(platforms)

            jobs, emails, events = [], [], []
            for i, platform in zip(range(start, stop), platforms, strict=True):
                state = states[i]
                created = platform.created_at
                done = {"status": "done", "attempts": 1, "finished_at": created}
                jobs.append(Job(platform=platform, kind="deliver", due_at=created, **done))
                timeline = ["ordered", "awaiting_setup", "email_delivery"]
                emails.append(_email_row(platform, platform_type, "delivery", i, created))
                if state in CONFIGURED:
                    timeline += ["configured", "certificate_pending", "email_dcv"]
                    if platform.dns_assist:
                        jobs.append(Job(platform=platform, kind="dns_assist", **done))
                        timeline.append("dns_assisted")
                    if platform.dns_state == "mismatch":
                        jobs.append(
                            Job(
                                platform=platform,
                                kind="dns_check",
                                due_at=now + timedelta(minutes=30 + i % 180),
                                dispatched_at=None,
                            )
                        )
                        timeline.append("dns_mismatch")
                    else:
                        jobs.append(Job(platform=platform, kind="dns_check", **done))
                        timeline.append("dns_verified")
                    jobs.append(Job(platform=platform, kind="certificate", **done))
                    emails.append(_email_row(platform, platform_type, "dcv", i, created))
                if state in ("ready", "finalising"):
                    timeline += ["certificate_issued", "finalising"]
                if state == "finalising":
                    jobs.append(Job(platform=platform, kind="finalise", due_at=platform.due_at))
                if state == "ready":
                    jobs.append(Job(platform=platform, kind="finalise", due_at=created, **done))
                    timeline += ["ready", "email_ready"]
                    emails.append(_email_row(platform, platform_type, "ready", i, created))
                if state in ("failed", "cancelled"):
                    timeline.append(state)
                events += [
                    PlatformEvent(
                        platform=platform,
                        kind=kind,
                        actor="system",
                        message=f"{kind} (seeded)",
                        created_at=created + timedelta(seconds=n),
                    )
                    for n, kind in enumerate(timeline)
                ]
            Job.objects.bulk_create(jobs, batch_size=CHUNK)
            Email.objects.bulk_create(emails, batch_size=CHUNK)
            PlatformEvent.objects.bulk_create(events, batch_size=CHUNK)


def _nic(k: int) -> str:
    return f"xx-{100000 + k}-ovh"


def _email(k: int) -> str:
    return f"ref-{k}@customer.example"


def _zone(k: int) -> str:
    return f"customer-{k}.example"


def _domain(i: int) -> str:
    return f"p{i}.{_zone(i // PLATFORMS_PER_ACCOUNT)}"


def _server(i: int) -> str:
    return f"exchange.{_domain(i)}"


def _order_number(i: int) -> int:
    return 10_000_000 + i  # above the 1,000,000 to 9,999,999 the portal draws from


def _email_row(platform, target_type, kind: str, i: int, created):
    from notifications.models import Email

    return Email(
        target_type=target_type,
        target_id=platform.pk,
        kind=kind,
        recipient=f"postmaster@{_domain(i)}" if kind == "dcv" else _email(i // 5),
        language="fr",
        subject=f"[{_nic(i // 5)}] Votre service Private Exchange {platform.service} ({kind})",
        body_text=TEXT,
        body_html=HTML,
        message_id=f"<seed-{i}-{kind}@bench.example>",
        status="done",
        attempts=1,
        due_at=created,
        created_at=created,
        finished_at=created,
        sent_at=created,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--platforms", type=int, required=True)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    started = time.monotonic()
    seed(args.platforms)
    print(f"  seeded {args.platforms:,} platforms in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
