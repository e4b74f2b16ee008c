from outbox.errors import PortalError


class CertificateOrderError(PortalError):
    """The order is not in a state that allows this (wrong backend, already issued, …)."""
