"""The guide's next step: the customer's mail domains on a ready platform.

Each domain has a track of its own (provisioning.states.DOMAIN): a name outside the
account's zones waits for its ownership CNAME, then the records are checked until MX is
right (active); once active, a record that was right and breaks makes it broken, with one
email, and one more when it is right again. DNS Assist (names inside a zone of the account)
plans the change, stores the plan, has the customer confirm the MX records it removes in
authoritative mode, writes, and takes back exactly what it wrote when the domain goes.

Two jobs per platform serve all its domains: DOMAIN_ASSIST (plan, write, undo) and
DOMAIN_CHECK (the checks, each domain at its own time, with backoff).
"""

import random
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Min, Q
from django.utils import timezone

from certificates.encryption import encrypt
from notifications.services import email_queue
from outbox import owed
from outbox.owed import Later
from provisioning import links
from provisioning.errors import NotAllowed, Refused
from provisioning.models import (
    BAD,
    AssistStatus,
    DkimKey,
    Domain,
    DomainMode,
    DomainState,
    JobKind,
    Platform,
    PlatformEvent,
    PlatformState,
)
from provisioning.rules import (
    AUTHORITATIVE_ELSEWHERE,
    domain_choices_check,
    domain_mode_check,
)
from provisioning.selectors import (
    authoritative_domains_elsewhere,
    domain_expected,
    domain_mail_records,
    domain_records_table,
    domain_zone_snippet,
)
from provisioning.services.common import SYSTEM, Stage, locked, owe_job_once, record
from zones.assist import (
    MailAssistPlan,
    mail_assist_plan,
    mail_assist_undo,
    mail_assist_write,
    served_mail,
)
from zones.checks import CheckStatus, MailCheckRules, check_mail_records, served_mail_found
from zones.dkim import dkim_keys_generate
from zones.errors import DnsCheckError, DnsConflictError, DnsError
from zones.mail import (
    RecordPurpose,
    ownership_token_new,
)
from zones.names import InvalidDomainName, normalise_domain
from zones.writers import get_writer

# Domains one run of a platform's check job looks at; the others wait for the next run.
CHECK_BATCH_SIZE = 20
# Seconds between two checks of one domain a person may ask for.
CHECK_NOW_SPACING = 10
# Work DNS Assist still owes: a plan to make, records to write, a removal to take back.
ASSIST_WORK = Q(removed_at__isnull=False) & ~Q(assist_status=AssistStatus.UNDO_FAILED) | Q(
    assist_status__in=[AssistStatus.TO_WRITE, AssistStatus.TO_PLAN]
)


# Adding, changing, removing (the customer's actions)


def _event(domain: Domain, kind: str, actor: str, message: str) -> PlatformEvent:
    return record(domain.platform, kind, actor, f"{domain.name}: {message}")


def domain_add(
    *, platform_id: int, actor: str, name: str, mode: str, relay_host: str, dns_assist: bool
) -> Domain:
    """A new domain on a ready platform, or Refused (a field) with nothing changed."""
    platform = Platform.objects.select_related("account").get(pk=platform_id)
    if platform.state != PlatformState.READY:
        raise NotAllowed("Domains are added once the platform is ready.")
    # The keys are made outside the transaction: two RSA-2048 pairs take a moment.
    keys = dkim_keys_generate(platform=platform.service, encrypt=encrypt)
    with transaction.atomic():
        platform = locked(platform_id)
        choices = domain_choices_check(
            name=name,
            mode=mode,
            relay_host=relay_host,
            dns_assist=dns_assist,
            managed_zones=platform.account.zones.values_list("name", flat=True),
            on_platform=platform.domains.filter(removed_at=None).values_list("name", flat=True),
            authoritative_elsewhere=authoritative_domains_elsewhere(platform, _a_label(name)),
            limit=settings.PLATFORM_MAX_DOMAINS,
        )
        domain = Domain(
            platform=platform,
            name=choices.name,
            zone=choices.zone,
            mode=choices.mode,
            relay_host=choices.relay_host,
            dns_assist=choices.dns_assist,
            ownership_token=ownership_token_new(),
            assist_status=AssistStatus.TO_PLAN if choices.dns_assist else AssistStatus.NONE,
            next_check_at=timezone.now(),
        )
        if choices.zone:
            # A name inside a zone of the account is the customer's already.
            domain.ownership_proven()
        try:
            with transaction.atomic():
                domain.save()
        except IntegrityError:
            # Another platform's claim committed after the check above.
            raise Refused("mode", AUTHORITATIVE_ELSEWHERE) from None
        DkimKey.objects.bulk_create(
            DkimKey(
                domain=domain,
                selector=key.selector,
                public_key=key.public_key,
                private_key_encrypted=key.private_key_encrypted,
                active=index == 0,
            )
            for index, key in enumerate(keys)
        )
        how = "with DNS Assist" if domain.dns_assist else "records explained by email"
        _event(domain, "domain_added", actor, f"added, {domain.get_mode_display().lower()}, {how}.")
        if domain.dns_assist:
            owe_job_once(platform, JobKind.DOMAIN_ASSIST)
        else:
            _records_email(domain)
        owe_job_once(platform, JobKind.DOMAIN_CHECK)
    return domain


def _a_label(name: str) -> str:
    """The name as stored, for a look-up before the rules refuse what is no name at all."""
    try:
        return normalise_domain(name)
    except InvalidDomainName:
        return name


def _locked_domain(domain_id: int) -> Domain:
    domain = Domain.objects.select_for_update().get(pk=domain_id, removed_at=None)
    domain.platform = locked(domain.platform_id)
    return domain


@transaction.atomic
def domain_mode_change(*, domain_id: int, actor: str, mode: str, relay_host: str) -> Domain:
    domain = _locked_domain(domain_id)
    mode, relay_host = domain_mode_check(mode=mode, relay_host=relay_host)
    if (mode, relay_host) == (domain.mode, domain.relay_host):
        return domain
    if mode == DomainMode.AUTHORITATIVE and authoritative_domains_elsewhere(
        domain.platform, domain.name
    ):
        raise Refused("mode", AUTHORITATIVE_ELSEWHERE)
    replan = domain.dns_assist and mode != domain.mode
    domain.mode, domain.relay_host = mode, relay_host
    if replan:
        # The MX set is ours alone, or shared, from now on: DNS Assist plans again (taking
        # back what the former plan wrote first).
        domain.assist_status = AssistStatus.TO_PLAN
    domain.next_check_at = timezone.now()
    try:
        with transaction.atomic():
            domain.save()
    except IntegrityError:
        raise Refused("mode", AUTHORITATIVE_ELSEWHERE) from None
    _event(domain, "domain_mode", actor, f"now {domain.get_mode_display().lower()}.")
    if replan:
        owe_job_once(domain.platform, JobKind.DOMAIN_ASSIST)
    return domain


@transaction.atomic
def domain_assist_confirm(*, domain_id: int, actor: str) -> Domain:
    """The customer saw the MX records DNS Assist removes: it may write."""
    domain = _locked_domain(domain_id)
    if domain.assist_status != AssistStatus.TO_CONFIRM:
        raise NotAllowed("There is nothing to confirm for this domain.")
    domain.assist_status = AssistStatus.TO_WRITE
    domain.save(update_fields=["assist_status"])
    removed = MailAssistPlan.from_dict(domain.assist_plan).removed_records()
    listing = ", ".join(f"{rtype} {value}" for _name, rtype, value in removed)
    _event(domain, "domain_assist_confirmed", actor, f"removal of {listing} confirmed.")
    owe_job_once(domain.platform, JobKind.DOMAIN_ASSIST)
    return domain


@transaction.atomic
def domain_assist_retry(*, domain_id: int, actor: str) -> Domain:
    domain = _locked_domain(domain_id)
    if domain.assist_status != AssistStatus.FAILED:
        raise NotAllowed("DNS Assist can only be retried after it failed.")
    domain.assist_status = AssistStatus.TO_PLAN
    domain.save(update_fields=["assist_status"])
    _event(domain, "domain_assist_retried", actor, "DNS Assist retried.")
    owe_job_once(domain.platform, JobKind.DOMAIN_ASSIST)
    return domain


def _remove(domain: Domain, actor: str) -> None:
    """In the caller's transaction, the domain locked."""
    if domain.assist_plan and domain.assist_status != AssistStatus.TO_CONFIRM:
        # DNS Assist may have written: the row stays until its records are taken back.
        domain.removed_at = timezone.now()
        domain.save(update_fields=["removed_at"])
        _event(domain, "domain_removed", actor, "removed; DNS Assist's records to take back.")
        owe_job_once(domain.platform, JobKind.DOMAIN_ASSIST)
        return
    _event(domain, "domain_removed", actor, "removed.")
    domain.delete()


@transaction.atomic
def domain_remove(*, domain_id: int, actor: str) -> None:
    _remove(_locked_domain(domain_id), actor)


@transaction.atomic
def platform_domains_release(*, platform_id: int, actor: str) -> int:
    """Every domain of the platform goes, DNS Assist's records taken back (termination).
    Safe to call again: a domain already going is left to its job. Returns how many went."""
    platform = locked(platform_id)
    domains = list(platform.domains.select_for_update().filter(removed_at=None))
    for domain in domains:
        domain.platform = platform
        _remove(domain, actor)
    return len(domains)


# Emails


def domain_records_email_context(domain: Domain) -> dict:
    return {
        "domain": domain,
        "records": domain_records_table(domain),
        "snippet": domain_zone_snippet(domain),
        "domains_url": links.domains_url(domain.platform),
    }


def _records_email(domain: Domain, *, resend_of=None, actor: str = SYSTEM) -> None:
    platform = domain.platform
    email = email_queue(
        target=domain,
        kind="domain_records",
        recipient=resend_of.recipient if resend_of else platform.account.email,
        language=platform.account.language,
        context={
            "platform": platform,
            "account": platform.account,
            **domain_records_email_context(domain),
        },
        resend_of=resend_of,
        requested_by=actor if resend_of else "",
    )
    what = "resent" if resend_of else "queued"
    _event(
        domain, "email_domain_records", actor, f"“{email.subject}” {what} for {email.recipient}."
    )


@transaction.atomic
def domain_records_email_resend(*, domain_id: int, actor: str) -> None:
    """Support sends the records email again (rendered anew, audited as a resend)."""
    domain = _locked_domain(domain_id)
    original = domain.emails.filter(kind="domain_records", resend_of=None).first()
    if original is None:
        raise NotAllowed(f"No records email was sent for {domain.name}.")
    _records_email(domain, resend_of=original, actor=actor)


def _change_email(domain: Domain, kind: str, event: PlatformEvent, broken: list[dict]) -> None:
    """One email per change of a domain: its target is the change's event row, which is
    written once (a redelivered check finds the state already moved)."""
    platform = domain.platform
    email = email_queue(
        target=event,
        kind=kind,
        recipient=platform.account.email,
        language=platform.account.language,
        context={
            "platform": platform,
            "account": platform.account,
            "domain": domain,
            "broken": broken,
            "domains_url": links.domains_url(platform),
        },
    )
    _event(domain, f"email_{kind}", SYSTEM, f"“{email.subject}” queued for {email.recipient}.")


# DNS Assist (the job)


def domains_assist(*, platform_id: int) -> Later | None:
    """Take back what removed domains had written, plan and write for the others. A DNS
    fault is transient: the job is retried, and each step is safe to run again."""
    writer = get_writer()
    platform = Platform.objects.get(pk=platform_id)
    removed = platform.domains.filter(removed_at__isnull=False)
    for domain in removed.exclude(assist_status=AssistStatus.UNDO_FAILED):
        if domain.assist_plan and domain.assist_status != AssistStatus.TO_CONFIRM:
            try:
                mail_assist_undo(writer=writer, plan=MailAssistPlan.from_dict(domain.assist_plan))
            except DnsError as error:
                if error.transient:
                    raise
                # A person has to fix the zone first (two SPF records...): the row and its
                # plan stay for the operator, and the other domains go on.
                with transaction.atomic():
                    Domain.objects.filter(pk=domain.pk).update(
                        assist_status=AssistStatus.UNDO_FAILED, message=error.message
                    )
                    _event(domain, "domain_assist_failed", SYSTEM, error.message)
                continue
        with transaction.atomic():
            _event(domain, "domain_assist_undone", SYSTEM, "DNS Assist's records taken back.")
            Domain.objects.filter(pk=domain.pk).delete()
    for domain in platform.domains.filter(removed_at=None, assist_status=AssistStatus.TO_PLAN):
        _plan(writer, domain)
    for domain in platform.domains.filter(removed_at=None, assist_status=AssistStatus.TO_WRITE):
        _write(writer, domain)
    if platform.domains.filter(ASSIST_WORK).exists():
        return Later(timezone.now())  # asked for while this run went on
    return None


def _plan(writer, domain: Domain) -> None:
    if domain.assist_plan:  # a change of mode: the former plan's records go first
        mail_assist_undo(writer=writer, plan=MailAssistPlan.from_dict(domain.assist_plan))
    try:
        served = served_mail(writer=writer, zone=domain.zone, domain=domain.name)
        plan = mail_assist_plan(
            writer=writer,
            mail=domain_mail_records(domain, served=served),
            authoritative=domain.mode == DomainMode.AUTHORITATIVE,
        )
    except DnsError as error:
        if error.transient:
            raise
        _assist_failed(domain.pk, error.message)
        return
    with transaction.atomic():
        domain = _locked_domain(domain.pk)
        if domain.assist_status != AssistStatus.TO_PLAN:
            return
        # Stored before anything is written: a write cut short can be run again or undone.
        domain.assist_plan = plan.as_dict()
        confirm = bool(plan.removed_records())
        domain.assist_status = AssistStatus.TO_CONFIRM if confirm else AssistStatus.TO_WRITE
        domain.save(update_fields=["assist_plan", "assist_status"])
        what = "MX records to remove: the customer confirms first" if confirm else "to write"
        _event(domain, "domain_assist_planned", SYSTEM, f"DNS Assist planned ({what}).")


def _write(writer, domain: Domain) -> None:
    plan = MailAssistPlan.from_dict(domain.assist_plan)
    try:
        mail_assist_write(writer=writer, plan=plan)
    except DnsConflictError as error:
        if error.transient:
            raise
        with transaction.atomic():
            domain = _locked_domain(domain.pk)
            domain.assist_status = AssistStatus.TO_PLAN  # the zone changed since it was confirmed
            domain.save(update_fields=["assist_status"])
            _event(domain, "domain_assist_replan", SYSTEM, error.message)
        return
    except DnsError as error:
        if error.transient:
            raise
        _assist_failed(domain.pk, error.message)
        return
    with transaction.atomic():
        domain = _locked_domain(domain.pk)
        if domain.assist_status != AssistStatus.TO_WRITE:
            return
        domain.assist_status = AssistStatus.WRITTEN
        domain.message = ""
        domain.next_check_at = timezone.now()
        domain.save(update_fields=["assist_status", "message", "next_check_at"])
        _event(domain, "domain_assisted", SYSTEM, f"records written in zone {plan.zone}.")
        if not owed.run_now(domain.platform.jobs.filter(kind=JobKind.DOMAIN_CHECK)):
            owe_job_once(domain.platform, JobKind.DOMAIN_CHECK)


def _assist_failed(domain_id: int, reason: str) -> None:
    with transaction.atomic():
        domain = Domain.objects.select_for_update().filter(pk=domain_id, removed_at=None).first()
        if domain is None:
            return
        domain.assist_status = AssistStatus.FAILED
        domain.message = reason
        domain.save(update_fields=["assist_status", "message"])
        _event(domain, "domain_assist_failed", SYSTEM, reason)


def domains_assist_failed(*, platform_id: int, reason: str) -> None:
    """The job gave up (the primary down too long): each domain waiting for it says so; the
    platform goes on."""
    waiting = Domain.objects.filter(
        platform_id=platform_id,
        removed_at=None,
        assist_status__in=[AssistStatus.TO_PLAN, AssistStatus.TO_WRITE],
    )
    for domain_id in waiting.values_list("pk", flat=True):
        _assist_failed(domain_id, reason)
    for domain in Domain.objects.filter(platform_id=platform_id, removed_at__isnull=False):
        _event(domain, "domain_assist_failed", SYSTEM, f"records not taken back: {reason}")


# Checks (the job, and "check now")


def _next_check(domain: Domain, *, right: bool):
    if right:
        delay = settings.DNS_CHECK_MAX_INTERVAL
    else:
        delay = min(
            settings.DNS_CHECK_INTERVAL * 2 ** max(domain.checks_unverified - 1, 0),
            settings.DNS_CHECK_MAX_INTERVAL,
        )
    return timezone.now() + timedelta(seconds=delay * random.uniform(0.9, 1.1))


def _key(row: dict) -> tuple:
    # An SPF record's value changes with merges: it is one record whatever it holds.
    value = "" if row["purpose"] == RecordPurpose.SPF else row["value"]
    return row["purpose"], row["name"], row["type"], value


def domain_check(*, domain_id: int, actor: str = SYSTEM) -> Domain | None:
    """Ask the DNS about every record of the domain, store what was found and move its
    track. DnsCheckError (transient) when the servers gave no usable answer at all."""
    domain = Domain.objects.select_related("platform").filter(pk=domain_id, removed_at=None)
    domain = domain.first()
    if domain is None:
        return None
    served = served_mail_found(domain=domain.name)
    mail, expected = domain_expected(domain, served=served)
    rules = MailCheckRules(
        spf_mechanisms=mail.spf_mechanisms,
        exclusive=domain.mode == DomainMode.AUTHORITATIVE,
        mx_hosts=tuple(record.value.split()[-1] for record in mail.of(RecordPurpose.MX)),
    )
    checks = check_mail_records(records=expected, rules=rules)
    with transaction.atomic():
        domain = _locked_domain(domain_id)
        before = {_key(row): row for row in domain.records}
        rows = []
        for check in checks:
            record_ = check.record
            row = {
                "purpose": str(record_.purpose),
                "name": record_.name,
                "relative": record_.relative,
                "type": record_.rtype,
                "value": record_.value,
                "ttl": record_.ttl,
                "required": record_.required,
                "status": str(check.status),
                "found": list(check.found),
                "error": check.error,
            }
            earlier = before.get(_key(row), {})
            row["was_ok"] = earlier.get("was_ok", False) or (
                domain.state in (DomainState.ACTIVE, DomainState.BROKEN)
                and check.status == CheckStatus.OK
            )
            rows.append(row)
        domain.records = rows
        domain.served = {"spf": served.spf, "has_dmarc": served.has_dmarc}
        domain.checked_at = timezone.now()
        if domain.assist_status != AssistStatus.FAILED:
            domain.message = ""  # what kept the last check back is over
        _move(domain, rows, actor)
        right = all(row["status"] == "ok" for row in rows if row["required"])
        domain.records_bad = sum(1 for row in rows if row["required"] and row["status"] in BAD)
        domain.checks_unverified = 0 if right else domain.checks_unverified + 1
        domain.next_check_at = _next_check(domain, right=right)
        domain.save()
    return domain


def _move(domain: Domain, rows: list[dict], actor: str) -> None:
    def ok(purpose: str) -> bool:
        of = [row for row in rows if row["purpose"] == purpose]
        return bool(of) and all(row["status"] == "ok" for row in of)

    if domain.state == DomainState.PENDING_OWNERSHIP and ok(RecordPurpose.OWNERSHIP):
        if authoritative_domains_elsewhere(domain.platform, domain.name) and (
            domain.mode == DomainMode.AUTHORITATIVE
        ):
            domain.message = AUTHORITATIVE_ELSEWHERE
        else:
            domain.ownership_proven()
            _event(domain, "domain_ownership_proven", actor, "ownership CNAME found.")
    broken = [
        row
        for row in rows
        if row["required"] and row["was_ok"] and row["status"] in ("missing", "wrong")
    ]
    if domain.state == DomainState.PENDING_RECORDS and ok(RecordPurpose.MX):
        domain.activate()
        for row in rows:
            row["was_ok"] = row["status"] == "ok"
        _event(domain, "domain_active", actor, "MX records right: active.")
    elif domain.state == DomainState.ACTIVE and broken:
        domain.break_records()
        words = "; ".join(f"{row['type']} {row['name']} {row['status']}" for row in broken)
        event = _event(domain, "domain_broken", actor, words)
        _change_email(domain, "domain_broken", event, broken)
    elif domain.state == DomainState.BROKEN and not broken and ok(RecordPurpose.MX):
        domain.activate()
        event = _event(domain, "domain_repaired", actor, "every record right again.")
        _change_email(domain, "domain_repaired", event, [])
    else:
        return
    domain.state_changed_at = timezone.now()


def domains_check(*, platform_id: int) -> Later | None:
    """The platform's domains whose check is due, a batch at a time; then when to run again."""
    due = Domain.objects.filter(
        platform_id=platform_id, removed_at=None, next_check_at__lte=timezone.now()
    ).order_by("next_check_at")
    for domain_id in list(due.values_list("pk", flat=True)[:CHECK_BATCH_SIZE]):
        try:
            domain_check(domain_id=domain_id)
        except DnsCheckError as error:
            later = timezone.now() + timedelta(seconds=settings.DNS_CHECK_INTERVAL)
            Domain.objects.filter(pk=domain_id).update(next_check_at=later, message=error.message)
    platform = Platform.objects.get(pk=platform_id)
    if platform.domains.filter(ASSIST_WORK).exists():
        # A DNS Assist asked for while its job was finishing is not lost.
        owe_job_once(platform, JobKind.DOMAIN_ASSIST)
    following = platform.domains.filter(removed_at=None).aggregate(at=Min("next_check_at"))["at"]
    return Later(following) if following else None


def domain_check_now(*, domain_id: int, actor: str) -> Domain:
    """A check a person asked for; spaced by CHECK_NOW_SPACING."""
    domain = Domain.objects.get(pk=domain_id, removed_at=None)
    if domain.checked_at and timezone.now() - domain.checked_at < timedelta(
        seconds=CHECK_NOW_SPACING
    ):
        raise NotAllowed("This domain was checked a few seconds ago; try again shortly.")
    return domain_check(domain_id=domain_id, actor=actor)


def domains_check_failed(*, platform_id: int, reason: str) -> None:
    """The check job gave up: the next person's check or change owes it again."""
    record(Platform.objects.get(pk=platform_id), "domain_checks_failed", SYSTEM, reason)


JOBS = {
    JobKind.DOMAIN_ASSIST: Stage(domains_assist, domains_assist_failed),
    JobKind.DOMAIN_CHECK: Stage(domains_check, domains_check_failed),
}
