"""Accounts, their zones, platforms with their state machine, events and owed jobs."""

from typing import ClassVar

from django.conf import settings
from django.contrib.contenttypes.fields import GenericRelation
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django_fsm import RETURN_VALUE, FSMField, FSMModelMixin, transition

from outbox.models import OPEN_STATUSES, OwedWork
from provisioning.states import (
    ACTIVE_STATES,
    DNS,
    DOMAIN,
    DOMAIN_HOLDING_STATES,
    DOMAIN_HOLDING_STATES_OF_DOMAINS,
    PLATFORM,
    DnsState,
    DomainState,
    JobKind,
    PlatformState,
    Step,
)
from zones.names import display_domain

NIC_VALIDATOR = RegexValidator(
    r"^[a-z0-9]+(-[a-z0-9]+)*$",
    "A NIC handle is made of lower-case letters, digits and single hyphens, like xx-11111-ovh.",
)


class Language(models.TextChoices):
    FRENCH = "fr", "Français"
    ENGLISH = "en", "English"


class ValidationMethod(models.TextChoices):
    """How the customer proves control of the server name to the internal CA (the setup
    form's `validation_method`); with an ACME CA, DNS-01 whatever this says."""

    EMAIL = "email", "E-mail"
    DNS = "dns", "DNS record"


class Account(models.Model):
    """A customer account of the hoster, known by its NIC handle."""

    nic = models.CharField("NIC handle", max_length=32, unique=True, validators=[NIC_VALIDATOR])
    email = models.EmailField("reference e-mail")
    language = models.CharField(max_length=2, choices=Language.choices, default=Language.FRENCH)
    users = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="accounts", blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["nic"]

    def __str__(self) -> str:
        return self.nic


class Zone(models.Model):
    """A DNS zone (a domain) that the account manages with the hoster."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="zones")
    name = models.CharField(max_length=253, unique=True, help_text="A-label form, no final dot")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


HOLDS_DOMAIN = (
    Q(state__in=DOMAIN_HOLDING_STATES)
    | Q(state=PlatformState.FAILED, failed_from__in=DOMAIN_HOLDING_STATES)
    | Q(state=PlatformState.SUSPENDED, suspended_from__in=DOMAIN_HOLDING_STATES)
)
# Every state a platform may be suspended in, and terminated from.
SUSPENDABLE_STATES = [*ACTIVE_STATES, PlatformState.READY, PlatformState.FAILED]
TERMINABLE_STATES = [s for s in PlatformState.values if s != PlatformState.TERMINATED]


class Platform(FSMModelMixin, models.Model):
    """One ordered Private Exchange platform. Its state changes only through the
    transitions below, each called from a service in provisioning.services."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="platforms")
    service = models.CharField("service name", max_length=40, unique=True)
    order_number = models.PositiveIntegerField(unique=True)
    state = FSMField(
        max_length=24, choices=PlatformState.choices, default=PlatformState.ORDERED, protected=True
    )
    failed_from = models.CharField(max_length=24, blank=True, choices=PlatformState.choices)
    failure_reason = models.TextField(blank=True)
    suspended_from = models.CharField(max_length=24, blank=True, choices=PlatformState.choices)
    suspension_reason = models.TextField(blank=True, help_text="shown to the customer")
    terminated_at = models.DateTimeField(null=True, blank=True)

    domain = models.CharField(max_length=253, blank=True, help_text="A-label form")
    server_name = models.CharField(max_length=253, blank=True, help_text="A-label form")
    validation_email = models.EmailField(blank=True)
    dns_assist = models.BooleanField("DNS Assist", default=False)
    validation_method = models.CharField(
        max_length=5, choices=ValidationMethod.choices, default=ValidationMethod.EMAIL
    )
    dns_state = FSMField(
        max_length=20, choices=DnsState.choices, default=DnsState.PENDING, protected=True
    )
    ipv4 = models.GenericIPAddressField("IPv4", protocol="IPv4", null=True, blank=True, unique=True)
    ipv6 = models.GenericIPAddressField("IPv6", protocol="IPv6", null=True, blank=True, unique=True)
    # The last DNS check: [{"rtype", "name", "expected", "found": [...], "status"}, ...]
    dns_records = models.JSONField(default=list, blank=True)
    dns_checked_at = models.DateTimeField(null=True, blank=True)
    dns_checks_unverified = models.PositiveIntegerField(
        default=0, help_text="consecutive checks that did not verify (spaces the next ones)"
    )
    dns_message = models.TextField(blank=True, help_text="why DNS Assist failed, in words")
    certificate = models.OneToOneField(
        "certificates.CertificateOrder",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="platform",
    )

    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    state_changed_at = models.DateTimeField(default=timezone.now)
    configured_at = models.DateTimeField(null=True, blank=True)
    ready_at = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(
        null=True, blank=True, help_text="When finalisation ends (state finalising)."
    )

    emails = GenericRelation(
        "notifications.Email",
        content_type_field="target_type",
        object_id_field="target_id",
        related_query_name="platform",
    )

    class Meta:
        ordering = ["-created_at"]
        permissions = [("resend_email", "Can resend service emails")]
        indexes = [
            # The admin's changelist order (newest first, then id).
            models.Index(fields=["created_at", "id"], name="platform_created_id_idx"),
            models.Index(fields=["state", "state_changed_at"]),
            models.Index(fields=["state", "due_at"]),
            models.Index(fields=["dns_state"]),
            models.Index(fields=["domain"]),
            # GET /api/orders/: keyset pagination on (updated_at, id), all or per account.
            models.Index(fields=["updated_at", "id"], name="platform_updated_id_idx"),
            models.Index(
                fields=["account", "updated_at", "id"], name="platform_account_updated_idx"
            ),
        ]
        constraints = [
            # Choosing a name proves nothing: several platforms may wait for validation on
            # one name, but only one may hold it once validated (Platform.holds_domain).
            models.UniqueConstraint(
                fields=["domain"],
                condition=~Q(domain="") & HOLDS_DOMAIN,
                name="platform_domain_held_once",
            ),
        ]

    def __str__(self) -> str:
        return self.service

    # Presentation: names are stored as A-labels and shown as U-labels.

    @property
    def server_name_display(self) -> str:
        return display_domain(self.server_name)

    @property
    def webmail_url(self) -> str:
        return f"https://{self.server_name}/owa" if self.server_name else ""

    @property
    def webmail_url_display(self) -> str:
        return f"https://{self.server_name_display}/owa" if self.server_name else ""

    @property
    def validation_email_display(self) -> str:
        local, _, domain = self.validation_email.partition("@")
        return f"{local}@{display_domain(domain)}" if domain else self.validation_email

    @property
    def state_info(self):
        """The platform state's row of provisioning.states.PLATFORM."""
        return PLATFORM[self.state]

    @property
    def dns_state_info(self):
        return DNS[self.dns_state]

    def has_reached(self, step: Step) -> bool:
        """Whether the platform is at this step of the guide or past it: nothing of a step
        may act on a platform before (a cancelled one is at none)."""
        state = self.failed_from if self.state == PlatformState.FAILED else self.state
        row = PLATFORM.states.get(state)
        if row is None or state == PlatformState.CANCELLED:
            return False
        return row.step is None or row.step >= step

    @property
    def progress(self) -> list[dict]:
        """The guide's steps with done / current / failed / todo (and waiting: DNS records
        not verified yet while the other steps go on), for the timeline."""
        state = self.failed_from if self.state == PlatformState.FAILED else self.state
        row = PLATFORM.states.get(state)
        current = len(Step) if row is None or row.step is None else row.step
        steps = []
        for index, label in zip(Step.values, Step.labels, strict=True):
            if index < current:
                status = "done"
            elif index == current:
                status = "failed" if self.state == PlatformState.FAILED else "current"
            else:
                status = "todo"
            if label == "DNS" and status == "done" and self.dns_state != DnsState.VERIFIED:
                # DNS is a track beside the state: its step is done once the records are found.
                status = "waiting"
            steps.append({"label": label, "status": status})
        return steps

    # Transitions. Each only moves the state; the service that calls it saves, records the
    # event and schedules the side effects.

    @transition(field=state, source=PlatformState.ORDERED, target=PlatformState.AWAITING_SETUP)
    def deliver(self) -> None:
        pass

    @transition(field=state, source=PlatformState.AWAITING_SETUP, target=PlatformState.CONFIGURED)
    def configure(self) -> None:
        self.configured_at = timezone.now()

    @transition(
        field=state, source=PlatformState.CONFIGURED, target=PlatformState.CERTIFICATE_PENDING
    )
    def request_certificate(self) -> None:
        pass

    @transition(
        field=state,
        source=PlatformState.CERTIFICATE_PENDING,
        target=PlatformState.CERTIFICATE_ISSUED,
    )
    def issue_certificate(self) -> None:
        pass

    @transition(
        field=state, source=PlatformState.CERTIFICATE_ISSUED, target=PlatformState.FINALISING
    )
    def finalise(self, *, due_at) -> None:
        self.due_at = due_at

    @transition(field=state, source=PlatformState.FINALISING, target=PlatformState.READY)
    def make_ready(self) -> None:
        self.ready_at = timezone.now()
        self.due_at = None

    @transition(
        field=state,
        source=[PlatformState.CONFIGURED, PlatformState.CERTIFICATE_PENDING],
        target=PlatformState.AWAITING_SETUP,
    )
    def choose_again(self) -> None:
        """Another platform proved control of the domain first: the customer chooses
        another name. The domain stays, to say which one was taken."""
        self.server_name = ""
        self.validation_email = ""
        self.dns_assist = False
        self.validation_method = ValidationMethod.EMAIL
        self.certificate = None
        self.configured_at = None
        self.dns_records = []
        self.dns_checked_at = None
        self.dns_checks_unverified = 0
        self.dns_message = ""
        self.dns_restart()

    @transition(field=state, source=ACTIVE_STATES, target=PlatformState.FAILED)
    def fail(self, *, reason: str) -> None:
        self.failed_from = self.state
        self.failure_reason = reason

    @transition(field=state, source=PlatformState.FAILED, target=RETURN_VALUE(*ACTIVE_STATES))
    def resume(self) -> str:
        """Back to the state the platform failed in (the operator's retry)."""
        target = self.failed_from
        self.failed_from = ""
        self.failure_reason = ""
        return target

    @transition(
        field=state,
        source=[*ACTIVE_STATES, PlatformState.FAILED],
        target=PlatformState.CANCELLED,
    )
    def cancel(self) -> None:
        self.due_at = None

    @transition(field=state, source=SUSPENDABLE_STATES, target=PlatformState.SUSPENDED)
    def suspend(self, *, reason: str) -> None:
        self.suspended_from = self.state
        self.suspension_reason = reason

    @transition(
        field=state, source=PlatformState.SUSPENDED, target=RETURN_VALUE(*SUSPENDABLE_STATES)
    )
    def unsuspend(self) -> str:
        """Back to the state the platform was suspended in."""
        target = self.suspended_from
        self.suspended_from = ""
        self.suspension_reason = ""
        return target

    @transition(field=state, source=TERMINABLE_STATES, target=PlatformState.TERMINATED)
    def terminate(self) -> None:
        self.terminated_at = timezone.now()
        self.due_at = None

    # The DNS track's transitions; the services in provisioning.services.dns call them.

    @transition(field=dns_state, source=DnsState.PENDING, target=DnsState.INSTRUCTIONS_SENT)
    def dns_instructions_sent(self) -> None:
        pass

    # A check may have found the records missing before DNS Assist wrote them.
    @transition(
        field=dns_state,
        source=[DnsState.PENDING, DnsState.ERROR, DnsState.MISMATCH],
        target=DnsState.ASSISTED,
    )
    def dns_assisted(self) -> None:
        pass

    @transition(field=dns_state, source="*", target=DnsState.VERIFIED)
    def dns_verified(self) -> None:
        pass

    # An error stays an error until DNS Assist is retried: a check does not hide it.
    @transition(
        field=dns_state,
        source=[s for s in DnsState.values if s != DnsState.ERROR],
        target=DnsState.MISMATCH,
    )
    def dns_mismatch(self) -> None:
        pass

    @transition(field=dns_state, source="*", target=DnsState.ERROR)
    def dns_error(self) -> None:
        pass

    @transition(field=dns_state, source=DnsState.ERROR, target=DnsState.PENDING)
    def dns_retry(self) -> None:
        pass

    @transition(field=dns_state, source="*", target=DnsState.PENDING)
    def dns_restart(self) -> None:
        """A new server name is to be chosen: nothing of the old one's DNS counts."""


class PlatformEvent(models.Model):
    """Append-only timeline of a platform: every transition, email and operator action."""

    platform = models.ForeignKey(Platform, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=40)
    actor = models.CharField(max_length=150, help_text="system, api, customer:<user>, staff:<user>")
    message = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.platform_id} {self.kind}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("Platform events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("Platform events are append-only.")


class Job(OwedWork):
    """Work owed to a platform (the task outbox). Written in the transaction that makes it
    owed, dispatched after commit, and dispatched again by the beat sweep when its message
    is lost or its worker dies: the row, not the broker, is the source of truth."""

    task_name = "provisioning.tasks.run_job"

    platform = models.ForeignKey(Platform, on_delete=models.CASCADE, related_name="jobs")
    kind = models.CharField(max_length=24, choices=JobKind.choices)

    class Meta:
        ordering = ["due_at", "id"]
        indexes = [models.Index(fields=["status", "due_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["platform", "kind"],
                condition=Q(status__in=OPEN_STATUSES),
                name="job_one_open_per_platform_and_kind",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} for {self.platform_id} ({self.status})"


class DomainMode(models.TextChoices):
    AUTHORITATIVE = "authoritative", "Authoritative"
    NON_AUTHORITATIVE = "non_authoritative", "Non-authoritative"


class AssistStatus(models.TextChoices):
    """Where DNS Assist stands for a domain; the plan is stored before anything is written."""

    NONE = "", "No DNS Assist"
    TO_PLAN = "to_plan", "To plan"
    TO_CONFIRM = "to_confirm", "Waiting for the customer to confirm the MX records removed"
    TO_WRITE = "to_write", "To write"
    WRITTEN = "written", "Written"
    FAILED = "failed", "Failed"
    UNDO_FAILED = "undo_failed", "Removed, its records not taken back"


class Domain(FSMModelMixin, models.Model):
    """A mail domain of a ready platform. Its state changes only through the transitions
    below, each called from provisioning.services.domains."""

    platform = models.ForeignKey(Platform, on_delete=models.CASCADE, related_name="domains")
    name = models.CharField(max_length=253, help_text="A-label form, no final dot")
    # The account's zone holding the name ("" outside them: ownership is to be proven).
    zone = models.CharField(max_length=253, blank=True)
    mode = models.CharField(max_length=20, choices=DomainMode.choices)
    relay_host = models.CharField(max_length=253, blank=True, help_text="A-label form")
    dns_assist = models.BooleanField("DNS Assist", default=False)
    ownership_token = models.CharField(max_length=57)
    state = FSMField(
        max_length=20,
        choices=DomainState.choices,
        default=DomainState.PENDING_OWNERSHIP,
        protected=True,
    )
    message = models.TextField(blank=True, help_text="what keeps the domain back, in words")
    # DNS Assist: zones.assist.MailAssistPlan.as_dict(), stored before writing.
    assist_plan = models.JSONField(null=True, blank=True)
    assist_status = models.CharField(
        max_length=12, choices=AssistStatus.choices, blank=True, default=AssistStatus.NONE
    )
    # The last check: [{"purpose", "name", "type", "value", "status", "found": [...]}, ...]
    records = models.JSONField(default=list, blank=True)
    # What the domain served at the last check that its records depend on: {"spf", "has_dmarc"}
    served = models.JSONField(default=dict, blank=True)
    checked_at = models.DateTimeField(null=True, blank=True)
    # Required records the last check found missing or wrong (admin's filter, /metrics).
    records_bad = models.PositiveIntegerField(default=0)
    checks_unverified = models.PositiveIntegerField(default=0)
    next_check_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # Removal under way: DNS Assist's records are being taken back; the row goes after.
    removed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    state_changed_at = models.DateTimeField(default=timezone.now)

    emails = GenericRelation(
        "notifications.Email",
        content_type_field="target_type",
        object_id_field="target_id",
        related_query_name="domain",
    )

    class Meta:
        ordering = ["name", "id"]
        indexes = [models.Index(fields=["state"])]
        constraints = [
            models.UniqueConstraint(
                fields=["platform", "name"],
                condition=Q(removed_at__isnull=True),
                name="domain_once_per_platform",
            ),
            # A domain is authoritative on one platform of the portal once its ownership is
            # known: a pending claim blocks nobody.
            models.UniqueConstraint(
                fields=["name"],
                condition=Q(
                    mode=DomainMode.AUTHORITATIVE,
                    removed_at__isnull=True,
                    state__in=DOMAIN_HOLDING_STATES_OF_DOMAINS,
                ),
                name="domain_authoritative_once",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def name_display(self) -> str:
        return display_domain(self.name)

    @property
    def state_info(self):
        return DOMAIN[self.state]

    @property
    def inside_account_zone(self) -> bool:
        return bool(self.zone)

    @transition(
        field=state, source=DomainState.PENDING_OWNERSHIP, target=DomainState.PENDING_RECORDS
    )
    def ownership_proven(self) -> None:
        self.message = ""

    @transition(
        field=state,
        source=[DomainState.PENDING_RECORDS, DomainState.BROKEN],
        target=DomainState.ACTIVE,
    )
    def activate(self) -> None:
        pass

    @transition(field=state, source=DomainState.ACTIVE, target=DomainState.BROKEN)
    def break_records(self) -> None:
        pass


# Statuses of a record that count against it (a red dot).
BAD = ("missing", "wrong")


class DkimKey(models.Model):
    """One of a domain's two DKIM selectors; the private key encrypted like a certificate's."""

    # Re-encrypted by rotate_encryption_keys (outbox.encryption).
    encrypted_fields: ClassVar = ("private_key_encrypted",)

    domain = models.ForeignKey(Domain, on_delete=models.CASCADE, related_name="dkim_keys")
    selector = models.CharField(max_length=63)
    public_key = models.TextField()
    private_key_encrypted = models.TextField()
    active = models.BooleanField(default=False, help_text="the selector that signs")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["selector"]
        constraints = [
            models.UniqueConstraint(fields=["domain", "selector"], name="dkim_selector_once"),
        ]

    def __str__(self) -> str:
        return f"{self.selector} ({self.domain})"


class OrderRequest(models.Model):
    """An Idempotency-Key of POST /api/orders/ and the first answer to it. Inserted in the
    order's transaction: the unique key makes a second platform for one key impossible, a
    concurrent request waiting on the first one's row until it commits."""

    key = models.CharField(max_length=255, unique=True)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of the canonical body")
    platform = models.OneToOneField(
        Platform, null=True, on_delete=models.CASCADE, related_name="order_request"
    )
    status_code = models.PositiveSmallIntegerField(null=True)
    response = models.JSONField(null=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return self.key


class RenewalReminder(models.Model):
    """A reminder sent about a renewal waiting for the customer, one per threshold before
    expiry: the unique row is what makes each go once, whatever redelivers the job."""

    platform = models.ForeignKey(Platform, on_delete=models.CASCADE, related_name="reminders")
    order = models.ForeignKey(
        "certificates.CertificateOrder", on_delete=models.CASCADE, related_name="reminders"
    )
    seconds_before = models.PositiveIntegerField(help_text="before the current certificate ends")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["order", "seconds_before"], name="renewal_reminder_once_per_threshold"
            ),
        ]

    def __str__(self) -> str:
        return f"reminder {self.seconds_before} s before the end of order {self.order_id}"
