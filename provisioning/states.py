"""Each track of a platform described once: its states, what each means and what moves it on.

A row of a table is everything the portal knows about a state: its label (translated on
the customer's pages, shown in admin), the guide's step it belongs to, the job that moves
it on when no person has to act, how long it may last before admin flags it stuck, whether
the customer sees the platform in their space, and the template that tells the customer
where it stands. The state enums, the settings' defaults, the admin, the selectors and the
templates read these tables; nothing else lists states.

This module imports no model (the settings read it before the apps are loaded).
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.db import models
from django.utils.translation import pgettext_lazy


class Step(models.IntegerChoices):
    """The steps of the hoster's guide, in order."""

    DELIVERY = 0, pgettext_lazy("guide step", "Delivery")
    INITIALISATION = 1, pgettext_lazy("guide step", "Initialisation")
    DNS = 2, pgettext_lazy("guide step", "DNS")
    CERTIFICATE = 3, pgettext_lazy("guide step", "SSL certificate")
    FINALISATION = 4, pgettext_lazy("guide step", "Finalisation")


class JobKind(models.TextChoices):
    """Work owed to a platform; each is done by one function of provisioning.services."""

    DELIVER = "deliver", "Delivery"
    DNS_ASSIST = "dns_assist", "DNS Assist"
    DNS_CHECK = "dns_check", "DNS check"
    CERTIFICATE = "certificate", "Certificate request"
    ACME_DNS = "acme_dns", "ACME DNS-01 (DNS Assist)"
    ACME_MANUAL = "acme_manual", "ACME DNS-01 (customer's record)"
    FINALISE = "finalise", "Finalisation"
    DOMAIN_ASSIST = "domain_assist", "Domains: DNS Assist"
    DOMAIN_CHECK = "domain_check", "Domains: checks"
    TERMINATE = "terminate", "Termination (clean-up)"
    RELEASE_ADDRESSES = "release_addresses", "Addresses back to the pools (after quarantine)"
    # The certificate's own work, beside the platform's state (a ready platform stays ready).
    CERTIFICATE_DNS = "certificate_dns", "Certificate DNS record check"
    CERTIFICATE_RENEW = "certificate_renew", "Certificate renewal"
    RENEWAL_REMINDER = "renewal_reminder", "Certificate renewal reminder"


# A platform's job: a kind, or a function of the platform when it depends on its choices.
JobOf = JobKind | Callable[[object], JobKind | None] | None


@dataclass(frozen=True)
class State:
    value: str
    label: str
    # The guide's step the customer is at (None: outside the guide, e.g. ready).
    step: Step | None = None
    # What moves the platform on when no person has to act (None: a person acts).
    job: JobOf = None
    # Seconds in this state before admin flags the platform stuck (None: never);
    # PLATFORM_STUCK_AFTER overrides them.
    stuck_after: int | None = None
    # The finalisation delay (FINALISATION_DELAY) is added to stuck_after.
    waits_out_finalisation: bool = False
    # Listed in the customer's space (the guide hides a platform being finalised).
    customer_sees: bool = True
    # Still on its way to ready (may fail, be retried).
    active: bool = False
    # What the customer's status page says about this state (None: nothing more).
    template: str | None = None
    # The platform proved control of its domain (certificate issued): it holds the name,
    # which no other platform may then choose (a database constraint).
    holds_domain: bool = False

    def job_for(self, platform) -> JobKind | None:
        return self.job(platform) if callable(self.job) else self.job


class Track:
    """The states of one track, in order, and the enum of their stored values."""

    def __init__(self, name: str, states: list[State]) -> None:
        self.name = name
        self.states = {state.value: state for state in states}
        self.choices = models.TextChoices(
            name, [(state.value.upper(), (state.value, state.label)) for state in states]
        )

    def __getitem__(self, value: str) -> State:
        return self.states[value]

    def __iter__(self):
        return iter(self.states.values())

    def label(self, value: str) -> str:
        state = self.states.get(value)
        return state.label if state else value

    def values(self, **where) -> list[str]:
        """The states whose attributes have these values, e.g. values(active=True)."""
        return [
            s.value for s in self if all(getattr(s, key) == want for key, want in where.items())
        ]


def _certificate_job(platform) -> JobKind | None:
    """An ACME order moves on by itself (DNS-01), a DNS record is checked until it is
    served; an emailed code waits for the customer."""
    order = platform.certificate
    if order is None:
        return None
    if order.backend == "acme":
        return JobKind.ACME_DNS if platform.dns_assist else JobKind.ACME_MANUAL
    return JobKind.CERTIFICATE_DNS if order.method == "dns" else None


MINUTES_10 = 600
DAYS_7 = 7 * 24 * 3600
HOUR = 3600

PLATFORM = Track(
    "PlatformState",
    [
        State(
            "ordered",
            pgettext_lazy("platform state", "Ordered"),
            step=Step.DELIVERY,
            job=JobKind.DELIVER,
            stuck_after=MINUTES_10,
            active=True,
            template="portal/states/ordered.html",
        ),
        State(
            "awaiting_setup",
            pgettext_lazy("platform state", "Awaiting setup"),
            step=Step.INITIALISATION,
            stuck_after=DAYS_7,
            active=True,
            template="portal/states/awaiting_setup.html",
        ),
        State(
            "configured",
            pgettext_lazy("platform state", "Configured"),
            step=Step.DNS,
            job=JobKind.CERTIFICATE,
            stuck_after=MINUTES_10,
            active=True,
        ),
        State(
            "certificate_pending",
            pgettext_lazy("platform state", "Certificate pending"),
            step=Step.CERTIFICATE,
            job=_certificate_job,
            stuck_after=DAYS_7,
            active=True,
        ),
        State(
            "certificate_issued",
            pgettext_lazy("platform state", "Certificate issued"),
            step=Step.FINALISATION,
            stuck_after=MINUTES_10,
            active=True,
            holds_domain=True,
        ),
        State(
            "finalising",
            pgettext_lazy("platform state", "Finalising"),
            step=Step.FINALISATION,
            job=JobKind.FINALISE,
            stuck_after=HOUR,
            waits_out_finalisation=True,
            customer_sees=False,
            active=True,
            template="portal/states/finalising.html",
            holds_domain=True,
        ),
        State(
            "ready",
            pgettext_lazy("platform state", "Ready"),
            template="portal/states/ready.html",
            holds_domain=True,
        ),
        State(
            "failed",
            pgettext_lazy("platform state", "Failed"),
            stuck_after=0,
            template="portal/states/failed.html",
        ),
        State("cancelled", pgettext_lazy("platform state", "Cancelled"), customer_sees=False),
        # The billing system's (or an operator's) hold, e.g. an unpaid invoice: nothing is
        # deleted, the customer sees it and why, and cannot configure or validate it.
        State(
            "suspended",
            pgettext_lazy("platform state", "Suspended"),
            template="portal/states/suspended.html",
        ),
        # Ended: its clean-up is owed work (provisioning.services.termination).
        State(
            "terminated",
            pgettext_lazy("platform state", "Terminated"),
            job=JobKind.TERMINATE,
            customer_sees=False,
        ),
    ],
)
PlatformState = PLATFORM.choices
ACTIVE_STATES = PLATFORM.values(active=True)
# A failed platform holds its domain when it failed after proving control.
DOMAIN_HOLDING_STATES = PLATFORM.values(holds_domain=True)


def stuck_after_defaults(*, finalisation_delay: int) -> dict[str, int]:
    """PLATFORM_STUCK_AFTER's defaults, from the table."""
    return {
        state.value: state.stuck_after + (finalisation_delay if state.waits_out_finalisation else 0)
        for state in PLATFORM
        if state.stuck_after is not None
    }


def _dns_assist_job(platform) -> JobKind | None:
    return JobKind.DNS_ASSIST if platform.dns_assist else None


# The DNS track: beside the platform's state, never blocking the certificate.
DNS = Track(
    "DnsState",
    [
        State("pending", pgettext_lazy("DNS state", "Pending"), job=_dns_assist_job),
        State(
            "assisted", pgettext_lazy("DNS state", "Written by DNS Assist"), job=JobKind.DNS_CHECK
        ),
        State(
            "instructions_sent",
            pgettext_lazy("DNS state", "Instructions sent"),
            job=JobKind.DNS_CHECK,
        ),
        State("verified", pgettext_lazy("DNS state", "Verified")),
        State("mismatch", pgettext_lazy("DNS state", "Mismatch"), job=JobKind.DNS_CHECK),
        State("error", pgettext_lazy("DNS state", "Error")),
    ],
)
DnsState = DNS.choices


# A customer's mail domain on a ready platform: a track of its own per domain. One job of
# each kind per platform serves all its domains (JobKind.DOMAIN_ASSIST, DOMAIN_CHECK).
DOMAIN = Track(
    "DomainState",
    [
        # A name outside the account's zones waits for its ownership CNAME; meanwhile it
        # holds nothing (choosing a name proves nothing).
        State(
            "pending_ownership",
            pgettext_lazy("domain state", "Ownership to prove"),
            job=JobKind.DOMAIN_CHECK,
        ),
        State(
            "pending_records",
            pgettext_lazy("domain state", "Records pending"),
            job=JobKind.DOMAIN_CHECK,
            holds_domain=True,
        ),
        State(
            "active",
            pgettext_lazy("domain state", "Active"),
            job=JobKind.DOMAIN_CHECK,
            holds_domain=True,
        ),
        State(
            "broken",
            pgettext_lazy("domain state", "Records broken"),
            job=JobKind.DOMAIN_CHECK,
            holds_domain=True,
        ),
    ],
)
DomainState = DOMAIN.choices
# An authoritative domain in these states is the one of the portal (a database constraint).
DOMAIN_HOLDING_STATES_OF_DOMAINS = DOMAIN.values(holds_domain=True)
