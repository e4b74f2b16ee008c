"""The base of the portal's errors: every app's error family derives from it."""


class PortalError(Exception):
    """Something the portal cannot do, said in plain words for an operator or a customer.

    ``field`` names the form or API field the error concerns (None: the whole request);
    ``transient`` says that the same call may succeed later (a timeout, a server down), so
    owed work is retried with backoff; otherwise a person has to change something first."""

    def __init__(self, message: str, *, field: str | None = None, transient: bool = False):
        super().__init__(message)
        self.message = message
        self.field = field
        self.transient = transient
