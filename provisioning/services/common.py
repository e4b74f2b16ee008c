"""What every stage's service does the same way: lock the platform, record an event, save
a transition, owe a job, queue an email about the platform."""

from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from notifications.models import Email
from notifications.services import EmailAlreadyQueued, email_queue
from outbox import owed
from provisioning.models import Job, JobKind, Platform, PlatformEvent
from provisioning.states import ACTIVE_STATES
from webhooks.models import EventType
from webhooks.services import webhook_event_owe

SYSTEM = "system"


def actor_for(user) -> str:
    return f"{'staff' if user.is_staff else 'customer'}:{user.get_username()}"


def locked(platform_id: int, *, account: bool = True) -> Platform:
    """The platform, its row locked, with its account. `account=False` locks the platform's
    row alone: without it, FOR UPDATE locks the joined account's row too, and every stage
    of every platform of an account (a certificate order's key generation included) waits
    for the others. The setup keeps it: the account's zones are read under that lock."""
    platforms = Platform.objects.select_related("account")
    if account:
        return platforms.select_for_update().get(pk=platform_id)
    return platforms.select_for_update(of=("self",)).get(pk=platform_id)


def record(platform: Platform, kind: str, actor: str, message: str = "") -> PlatformEvent:
    return PlatformEvent.objects.create(platform=platform, kind=kind, actor=actor, message=message)


def moved(platform: Platform, actor: str, message: str = "") -> None:
    """Save a platform whose transition method just ran, with its event."""
    platform.state_changed_at = timezone.now()
    platform.save()
    record(platform, platform.state, actor, message)


def owe_job(platform: Platform, kind: JobKind, *, due_at=None) -> Job:
    return owed.owe(Job(platform=platform, kind=kind, due_at=due_at or timezone.now()))


def owe_job_once(platform: Platform, kind: JobKind, *, due_at=None) -> None:
    """Owe the job unless one of its kind is already owed."""
    job = Job(platform=platform, kind=kind, due_at=due_at or timezone.now())
    owed.owe_once(job, among=platform.jobs.filter(kind=kind))


def queue_platform_email(
    platform: Platform,
    kind: str,
    *,
    context: dict,
    recipient: str | None = None,
    language: str | None = None,
    sender: str = "",
    resend_of: Email | None = None,
    actor: str = SYSTEM,
    new_setup: bool = False,
    target=None,
) -> Email:
    """An email about the platform, with its event. `context` is what the kind's templates
    show besides the platform and the account (each stage builds its own). An email of a
    setup (`new_setup`) goes out again, as a copy of the first, when the customer chose
    again after another platform took the name. An email about one certificate order of the
    platform (a renewal's) has that order as `target`: one of each kind per order."""
    recipient = recipient or platform.account.email

    def queue(original: Email | None) -> Email:
        return email_queue(
            target=target or platform,
            kind=kind,
            recipient=recipient,
            language=language or platform.account.language,
            context={"platform": platform, "account": platform.account, **context},
            sender=sender,
            resend_of=original,
            requested_by=actor if original else "",
        )

    try:
        email = queue(resend_of)
    except EmailAlreadyQueued:
        if not new_setup:
            raise
        resend_of = first_email(platform, kind)
        email = queue(resend_of)
    what = "resent" if resend_of else "queued"
    record(platform, f"email_{kind}", actor, f"“{email.subject}” {what} for {recipient}.")
    return email


def first_email(platform: Platform, kind: str) -> Email | None:
    """The platform's first email of this kind, which a person's resend names."""
    return platform.emails.filter(kind=kind, resend_of=None).first()


@transaction.atomic
def platform_fail(*, platform_id: int, reason: str, actor: str = SYSTEM) -> None:
    """A stage gave up: the platform is failed, visibly, until an operator retries it."""
    platform = locked(platform_id)
    if platform.state not in ACTIVE_STATES:
        return
    platform.fail(reason=reason)
    moved(platform, actor, reason)
    webhook_event_owe(platform, EventType.FAILED, reason=reason)


@dataclass(frozen=True)
class Stage:
    """What a job runs (given the platform's id; it may return outbox.owed.Later to be run
    again then), and what giving up on it means for the platform."""

    run: Callable
    give_up: Callable = platform_fail
