"""What the provisioning app refuses or fails at, in plain words (outbox.errors.PortalError:
the message, the field it concerns, whether it is transient). Pages and admin show the
message; the job runner retries what is transient."""

from outbox.errors import PortalError


class Refused(PortalError):
    """A value a person chose cannot be accepted; `field` names it. Nothing changed."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message, field=field)


class NotAllowed(PortalError):
    """The platform is not where this action applies (already configured, nothing to
    retry, not waiting for a validation code). Nothing changed."""


class StageFailed(PortalError):
    """A stage's attempt failed: a transient failure is retried with backoff, any other
    fails the stage visibly until an operator retries it."""


class Conflict(Refused):
    """The value is taken: the NIC handle exists, the zone is another account's."""
