"""The one exception family of the zones app."""

from outbox.errors import PortalError


class DnsError(PortalError):
    """A DNS operation failed; ``message`` is for an operator or a customer to read.

    ``transient`` says that the same call may succeed later (timeout, server down,
    SERVFAIL), so the caller retries; otherwise a person has to fix something first.
    """

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message, transient=transient)


class DnsWriteError(DnsError):
    """Writing records (or reading them back from the primary) failed."""


class DnsCheckError(DnsError):
    """The resolvers could not say whether the records are there."""


class DnsConflictError(DnsWriteError):
    """The records changed since they were read (or shown for confirmation): nothing was
    written. Transient when a concurrent change raced the update: a new read may succeed."""
