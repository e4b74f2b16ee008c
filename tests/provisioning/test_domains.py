"""The customer's mail domains against a real BIND9 and a real SMTP server, with the owed
work run as a worker would (tests.helpers.work_off): DNS Assist in a zone of the account and
its undo, an outside domain proven by its CNAME, the authoritative rule, one email per change."""

import pytest
from django.db import IntegrityError, transaction
from django.test import Client

from provisioning.errors import Refused
from provisioning.models import Domain, Platform, PlatformEvent
from provisioning.selectors import domains_summary
from provisioning.services import (
    domain_add,
    domain_check_now,
    domain_remove,
    platform_domains_release,
)
from provisioning.states import DomainState
from tests.bind import SUB_ZONE
from tests.conftest import text_body
from tests.factories import AccountFactory
from tests.helpers import delivered_platform, work_off

SITE_VERIFICATION = "google-site-verification=abc123"
# The hoster's host name the ownership CNAME points to (one BIND serves, as in production).
TARGET = "www.readonly.test"


def add_domain(
    platform, name: str, *, mode: str = "authoritative", relay_host: str = "", dns_assist=False
) -> Domain:
    """The customer's "add a domain", through the service."""
    return domain_add(
        platform_id=platform.pk,
        actor="test",
        name=name,
        mode=mode,
        relay_host=relay_host,
        dns_assist=dns_assist,
    )


def ready_platform(account, *, domain: str, bind=None) -> Platform:
    """A platform past its five steps (only what the domains read of it), its server name's
    A and AAAA served when its domain is a zone of ``bind`` (as step 3 left them)."""
    platform = delivered_platform(account)
    Platform.objects.filter(pk=platform.pk).update(
        state="ready", domain=domain, server_name=f"mail.{domain}"
    )
    platform.refresh_from_db()
    if bind is not None:
        bind.set_records(platform.server_name, "A", [platform.ipv4], zone=domain)
        bind.set_records(platform.server_name, "AAAA", [platform.ipv6], zone=domain)
    return platform


@pytest.fixture
def dns(db, bind, settings, mailbox):
    bind.configure(settings)
    settings.DOMAIN_CHECK_TARGET = TARGET
    settings.MAIL_EXCHANGERS = ""
    return bind


def customer(account) -> Client:
    client = Client()
    client.force_login(account.users.get())
    return client


def events(platform) -> list[str]:
    return list(PlatformEvent.objects.filter(platform=platform).values_list("kind", flat=True))


def test_dns_assist_in_a_zone_of_the_account_and_its_undo(dns):
    account = AccountFactory(zones=[dns.zone], language="en")
    platform = ready_platform(account, domain=dns.zone, bind=dns)
    dns.set_records(dns.zone, "TXT", ['"v=spf1 mx -all"', f'"{SITE_VERIFICATION}"'], ttl=3600)
    before = dns.records()
    client = customer(account)

    response = client.post(
        f"/platforms/{platform.service}/domains/",
        {"domain": dns.zone, "mode": "authoritative", "relay_host": "", "dns_assist": "on"},
    )
    assert response.status_code == 302
    work_off()
    domain = Domain.objects.get(platform=platform)
    assert domain.assist_status == "to_confirm"
    assert dns.records() == before  # nothing written before the customer confirms

    page = client.get(f"/platforms/{platform.service}/domains/{dns.zone}/confirm/")
    assert "10 mx.example.test" in page.content.decode()  # the MX record that goes
    assert client.post(f"/platforms/{platform.service}/domains/{dns.zone}/confirm/").status_code
    work_off()

    server = platform.server_name
    assert dns.served(dns.zone, "MX") == {f"10 {server}."}
    assert dns.served(f"_autodiscover._tcp.{dns.zone}", "SRV") == {f"0 0 443 {server}."}
    assert dns.served(dns.zone, "TXT") == {
        f"v=spf1 mx ip4:{platform.ipv4} ip6:{platform.ipv6} -all",
        SITE_VERIFICATION,
    }
    for key in domain.dkim_keys.all():
        served = dns.served(f"{key.selector}._domainkey.{dns.zone}", "TXT")
        assert served == {f"v=DKIM1; k=rsa; p={key.public_key}"}
    domain.refresh_from_db()
    assert domain.state == DomainState.ACTIVE
    assert {"domain_added", "domain_assist_planned", "domain_assisted", "domain_active"} <= set(
        events(platform)
    )
    summary = domains_summary(platform)
    assert summary[0]["name"] == dns.zone and summary[0]["state"] == "active"
    mx = [r for r in summary[0]["records"] if r["type"] == "MX"]
    assert mx == [{"name": dns.zone, "type": "MX", "value": f"10 {server}", "status": "ok"}]

    page = client.get(f"/platforms/{platform.service}/domains/{dns.zone}/remove/")
    assert "Remove" in page.content.decode()
    client.post(f"/platforms/{platform.service}/domains/{dns.zone}/remove/")
    work_off()
    assert dns.records() == before  # the SPF merge undone, the MX set restored
    assert not Domain.objects.filter(platform=platform).exists()
    assert "domain_assist_undone" in events(platform)


def test_an_outside_domain_proves_ownership_then_one_email_per_change(dns, mailbox):
    account = AccountFactory(zones=[dns.read_only_zone], language="en")
    platform = ready_platform(account, domain=dns.read_only_zone)
    domain = add_domain(platform, SUB_ZONE, mode="non_authoritative", relay_host="mx.other.test")
    work_off()
    domain.refresh_from_db()
    assert domain.state == DomainState.PENDING_OWNERSHIP
    mailbox.wait_for(2)  # the delivery email, then the records
    body = text_body(mailbox.with_subject("DNS records to create for sub.example.test")[0])
    assert f"{domain.ownership_token}-check.{SUB_ZONE}" in body and TARGET in body
    assert "_autodiscover._tcp" in body and "v=DKIM1" in body
    summary = domains_summary(platform)[0]
    assert summary["records"][0] == {
        "name": f"{domain.ownership_token}-check.{SUB_ZONE}",
        "type": "CNAME",
        "value": TARGET,
        "status": "missing",
    }

    # The customer creates the records, as they would in their provider's editor.
    zone = SUB_ZONE
    dns.set_records(f"{domain.ownership_token}-check.{zone}", "CNAME", [f"{TARGET}."], zone=zone)
    server = platform.server_name
    dns.set_records(zone, "MX", [f"10 {server}."], zone=zone)
    check_now(domain)
    domain.refresh_from_db()
    assert domain.state == DomainState.ACTIVE
    assert "CNAME" not in {r["type"] for r in domains_summary(platform)[0]["records"]}

    for key in domain.dkim_keys.all():
        dns.set_records(
            f"{key.selector}._domainkey.{zone}",
            "TXT",
            [_txt(f"v=DKIM1; k=rsa; p={key.public_key}")],
            zone=zone,
        )
    check_now(domain)

    # The DKIM record that was right breaks: one email, however many checks follow.
    dns.delete_records(f"{domain.dkim_keys.first().selector}._domainkey.{zone}", "TXT", zone=zone)
    for _ in range(3):
        check_now(domain)
    work_off()
    domain.refresh_from_db()
    assert domain.state == DomainState.BROKEN
    mailbox.wait_for(3)
    broken = mailbox.with_subject("have changed")
    assert len(broken) == 1
    assert "_domainkey" in text_body(broken[0]) and "missing" in text_body(broken[0])

    dns.set_records(
        f"{domain.dkim_keys.first().selector}._domainkey.{zone}",
        "TXT",
        [_txt(f"v=DKIM1; k=rsa; p={domain.dkim_keys.first().public_key}")],
        zone=zone,
    )
    for _ in range(2):
        check_now(domain)
    work_off()
    mailbox.wait_for(4)
    assert len(mailbox.with_subject("right again")) == 1
    assert len(mailbox.with_subject("have changed")) == 1
    assert len(mailbox.messages) == 4
    domain.refresh_from_db()
    assert domain.state == DomainState.ACTIVE


def check_now(domain) -> None:
    """The customer's "check now", a few seconds after the previous check."""
    Domain.objects.filter(pk=domain.pk).update(checked_at=None)
    domain_check_now(domain_id=domain.pk, actor="test")


def _txt(value: str) -> str:
    """A TXT value in zone-file syntax: strings of at most 255 characters."""
    return " ".join(f'"{value[i : i + 255]}"' for i in range(0, len(value), 255))


def test_authoritative_on_one_platform_only(dns):
    account = AccountFactory(zones=[dns.zone], language="en")
    first = ready_platform(account, domain=dns.zone)
    add_domain(first, dns.zone)
    other_account = AccountFactory(language="en")
    second = ready_platform(other_account, domain="other.test")
    response = customer(other_account).post(
        f"/platforms/{second.service}/domains/",
        {"domain": dns.zone, "mode": "authoritative", "relay_host": ""},
    )
    assert response.status_code == 400
    assert "this domain is authoritative on another platform" in response.content.decode().lower()
    assert not second.domains.exists()
    # Shared, it may be added.
    response = customer(other_account).post(
        f"/platforms/{second.service}/domains/",
        {"domain": dns.zone, "mode": "non_authoritative", "relay_host": "mx.other.test"},
    )
    assert response.status_code == 302
    assert second.domains.get().state == DomainState.PENDING_OWNERSHIP


@pytest.mark.postgres
def test_the_database_refuses_a_second_authoritative_domain(dns):
    first = ready_platform(AccountFactory(zones=[dns.zone]), domain=dns.zone)
    second = ready_platform(AccountFactory(zones=["other.test"]), domain="other.test")
    add_domain(first, dns.zone)
    pending = Domain(platform=second, name=dns.zone, mode="authoritative", ownership_token="a1")
    pending.save()  # a claim not proven yet blocks nobody
    claim = Domain(platform=second, name=dns.zone, mode="authoritative", ownership_token="b2")
    claim.ownership_proven()
    with pytest.raises(IntegrityError), transaction.atomic():
        Domain.objects.bulk_create([claim])  # no form, no service: the index refuses it


def test_the_form_refuses_bad_input_and_changes_nothing(dns, settings):
    settings.PLATFORM_MAX_DOMAINS = 2
    account = AccountFactory(zones=[dns.zone], language="en")
    platform = ready_platform(account, domain=dns.zone)
    client = customer(account)
    url = f"/platforms/{platform.service}/domains/"
    cases = [
        ({"domain": "not a name", "mode": "authoritative"}, "cannot contain spaces"),
        ({"domain": "shared.test", "mode": "non_authoritative"}, "other mail server"),
        ({"domain": "x.test", "mode": "authoritative", "dns_assist": "on"}, "DNS Assist needs"),
        ({"domain": "x.test", "mode": "sideways"}, "Select a valid choice"),
    ]
    for data, words in cases:
        response = client.post(url, data)
        assert response.status_code == 400, data
        assert words in response.content.decode(), data
    assert not platform.domains.exists()

    # IDN stored as A-labels, a sub-domain of a zone is the customer's.
    assert client.post(url, {"domain": "bücher.test", "mode": "authoritative"}).status_code == 302
    assert client.post(url, {"domain": f"lists.{dns.zone}", "mode": "authoritative"}).status_code
    names = dict(platform.domains.values_list("name", "state"))
    assert names == {
        "xn--bcher-kva.test": "pending_ownership",
        f"lists.{dns.zone}": "pending_records",
    }
    response = client.post(url, {"domain": "BÜCHER.test", "mode": "authoritative"})
    assert "already on this platform" in response.content.decode()
    response = client.post(url, {"domain": "third.test", "mode": "authoritative"})
    assert "remove one first" in response.content.decode()
    assert platform.domains.count() == 2


def test_the_page_in_french_lists_domains_with_dots_and_words(dns):
    account = AccountFactory(zones=[dns.zone], language="fr")
    platform = ready_platform(account, domain=dns.zone)
    add_domain(platform, dns.zone)
    client = customer(account)
    page = client.get(f"/platforms/{platform.service}/domains/", HTTP_ACCEPT_LANGUAGE="fr")
    text = page.content.decode()
    assert "Ajouter un domaine" in text
    assert "record-dot status-unchecked" in text and "Pas encore vérifié" in text
    snippet = client.get(f"/platforms/{platform.service}/domains/{dns.zone}/zone.txt")
    assert f"$ORIGIN {dns.zone}." in snippet.content.decode()
    status = client.get(f"/platforms/{platform.service}/").content.decode()
    assert f"/platforms/{platform.service}/domains/" in status


def test_release_owes_the_undo_of_every_domain_once(dns):
    account = AccountFactory(zones=[dns.zone], language="en")
    platform = ready_platform(account, domain=dns.zone, bind=dns)
    before = dns.records()
    domain = add_domain(
        platform, dns.zone, mode="non_authoritative", relay_host="mx.example.test", dns_assist=True
    )
    add_domain(platform, "elsewhere.test")
    work_off()
    assert dns.records() != before
    assert platform_domains_release(platform_id=platform.pk, actor="billing") == 2
    assert platform_domains_release(platform_id=platform.pk, actor="billing") == 0
    work_off()
    assert dns.records() == before
    assert not Domain.objects.filter(pk=domain.pk).exists()
    assert not platform.domains.exists()


def test_a_removed_domain_never_confirmed_leaves_the_zone_alone(dns):
    account = AccountFactory(zones=[dns.zone], language="en")
    platform = ready_platform(account, domain=dns.zone, bind=dns)
    before = dns.records()
    domain = add_domain(platform, dns.zone, dns_assist=True)
    work_off()
    domain.refresh_from_db()
    assert domain.assist_status == "to_confirm"
    domain_remove(domain_id=domain.pk, actor="test")
    work_off()
    assert dns.records() == before
    assert not Domain.objects.filter(pk=domain.pk).exists()


def test_a_change_of_mode_with_dns_assist_takes_back_then_writes_for_the_new_mode(dns):
    account = AccountFactory(zones=[dns.zone], language="en")
    platform = ready_platform(account, domain=dns.zone, bind=dns)
    before = dns.records()
    client = customer(account)
    client.post(
        f"/platforms/{platform.service}/domains/",
        {
            "domain": dns.zone,
            "mode": "non_authoritative",
            "relay_host": f"mx.{dns.zone}",
            "dns_assist": "on",
        },
    )
    work_off()
    server = platform.server_name
    assert dns.served(dns.zone, "MX") == {f"10 mx.{dns.zone}.", f"10 {server}."}  # shared

    page = client.post(
        f"/platforms/{platform.service}/domains/{dns.zone}/mode/",
        {"mode": "authoritative", "relay_host": ""},
    )
    assert page.status_code == 302
    work_off()
    domain = Domain.objects.get(platform=platform)
    assert domain.assist_status == "to_confirm"  # the former MX goes: the customer confirms
    assert domain.mode == "authoritative" and domain.relay_host == ""
    client.post(f"/platforms/{platform.service}/domains/{dns.zone}/confirm/")
    work_off()
    assert dns.served(dns.zone, "MX") == {f"10 {server}."}
    assert {"domain_mode", "domain_assist_confirmed"} <= set(events(platform))

    client.post(f"/platforms/{platform.service}/domains/{dns.zone}/remove/")
    work_off()
    assert dns.records() == before


def test_an_undo_a_person_must_unblock_stays_visible_and_blocks_nothing(dns):
    account = AccountFactory(zones=[dns.zone], language="en")
    platform = ready_platform(account, domain=dns.zone, bind=dns)
    domain = add_domain(
        platform, dns.zone, mode="non_authoritative", relay_host=f"mx.{dns.zone}", dns_assist=True
    )
    work_off()
    # Someone adds a second SPF record: both are void (RFC 7208 3.2), nothing to unmerge.
    spf = next(iter(v for v in dns.served(dns.zone, "TXT") if v.startswith("v=spf1")))
    dns.set_records(dns.zone, "TXT", [f'"{spf}"', '"v=spf1 -all"'])
    domain_remove(domain_id=domain.pk, actor="test")
    work_off()
    domain.refresh_from_db()
    assert domain.assist_status == "undo_failed" and "2 SPF records" in domain.message
    # Done (the write, then the removal), not retried for ever.
    assert set(platform.jobs.filter(kind="domain_assist").values_list("status", flat=True)) == {
        "done"
    }
    # The name may be added again meanwhile.
    again = add_domain(platform, dns.zone)
    assert again.pk != domain.pk


def test_the_service_refuses_an_authoritative_claim_however_the_name_is_written(dns):
    zone = "xn--bcher-kva.example"  # zones are stored as A-labels
    first = ready_platform(AccountFactory(zones=[zone]), domain=zone)
    add_domain(first, "bücher.example")
    second = ready_platform(AccountFactory(), domain="other.test")
    with pytest.raises(Refused, match="authoritative on another platform"):
        add_domain(second, "BÜCHER.example.")
    assert not second.domains.exists()


def test_only_the_owner_of_a_ready_platform_reaches_its_domains(dns):
    account = AccountFactory(zones=[dns.zone], language="en")
    platform = ready_platform(account, domain=dns.zone)
    add_domain(platform, dns.zone)
    stranger = customer(AccountFactory(language="en"))
    url = f"/platforms/{platform.service}/domains/"
    assert stranger.get(url).status_code == 404
    assert stranger.post(f"{url}{dns.zone}/remove/").status_code == 404
    assert platform.domains.exists()
    waiting = delivered_platform(account)  # not ready yet: no domains page
    assert customer(account).get(f"/platforms/{waiting.service}/domains/").status_code == 404
