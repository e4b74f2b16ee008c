"""Accounts, their zones, platforms with their state machine, events and owed jobs."""

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
    DOMAIN_HOLDING_STATES,
    PLATFORM,
    DnsState,
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


HOLDS_DOMAIN = Q(state__in=DOMAIN_HOLDING_STATES) | Q(
    state=PlatformState.FAILED, failed_from__in=DOMAIN_HOLDING_STATES
)


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
