class CertificateOrderError(Exception):
    """The order is not in a state that allows this (wrong backend, already issued, …)."""
