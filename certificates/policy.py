"""How long certificates live and validations count, by the CA/B Forum's Baseline Requirements.

Pure: dates and numbers in, durations and moments out. The callers pass the settings
(`CERTIFICATE_LIFETIME`, `DCV_REUSE_PERIOD`, `CERTIFICATE_RENEW_BEFORE_PERCENT`).

Ballot SC-081 shortens, in steps, both the longest a publicly trusted TLS certificate may
live (BR §6.3.2) and how long a domain validation may be reused (BR §4.2.1); ballot SC-090
ends validation by email to constructed addresses (BR §3.2.2.4.4) on 2028-03-15.
"""

import datetime

DAY = datetime.timedelta(days=1)

# (from this date on, at most this long), latest first.
_MAX_LIFETIMES = [
    (datetime.date(2029, 3, 15), datetime.timedelta(days=47)),
    (datetime.date(2027, 3, 15), datetime.timedelta(days=100)),
    (datetime.date(2026, 3, 15), datetime.timedelta(days=200)),
]
_MAX_LIFETIME_BEFORE = datetime.timedelta(days=398)

_MAX_REUSE_PERIODS = [
    (datetime.date(2029, 3, 15), datetime.timedelta(days=10)),
    (datetime.date(2027, 3, 15), datetime.timedelta(days=100)),
    (datetime.date(2026, 3, 15), datetime.timedelta(days=200)),
]
_MAX_REUSE_PERIOD_BEFORE = datetime.timedelta(days=398)

# From this date an email validation may not be performed, so none may be reused either.
EMAIL_VALIDATION_ENDS = datetime.date(2028, 3, 15)

# A certificate this close to its end and not yet replaced is flagged as expiring.
EXPIRING_WITHIN = datetime.timedelta(days=14)


def _in_force(on: datetime.datetime, steps: list, before: datetime.timedelta):
    day = on.astimezone(datetime.UTC).date()
    return next((limit for start, limit in steps if day >= start), before)


def max_lifetime(*, on: datetime.datetime) -> datetime.timedelta:
    """The longest lifetime of a publicly trusted certificate issued at `on` (BR §6.3.2)."""
    return _in_force(on, _MAX_LIFETIMES, _MAX_LIFETIME_BEFORE)


def certificate_lifetime(*, on: datetime.datetime, configured: int | None) -> datetime.timedelta:
    """How long the internal CA makes a certificate issued at `on`: a day short of the
    maximum in force, which leaves room for clocks and rounding, or `configured` seconds
    when that is shorter (a longer setting cannot break the rule)."""
    lifetime = max_lifetime(on=on) - DAY
    if configured is not None:
        lifetime = min(lifetime, datetime.timedelta(seconds=configured))
    return lifetime


def max_reuse_period(*, on: datetime.datetime, method: str) -> datetime.timedelta:
    """The longest a validation may be relied on at `on` (BR §4.2.1); none for an email
    validation once email validation has ended."""
    if method == "email" and on.astimezone(datetime.UTC).date() >= EMAIL_VALIDATION_ENDS:
        return datetime.timedelta(0)
    return _in_force(on, _MAX_REUSE_PERIODS, _MAX_REUSE_PERIOD_BEFORE)


def reuse_period(
    *, on: datetime.datetime, method: str, configured: int | None
) -> datetime.timedelta:
    """The reuse period applied: the maximum in force, or `configured` seconds if shorter."""
    period = max_reuse_period(on=on, method=method)
    if configured is not None:
        period = min(period, datetime.timedelta(seconds=configured))
    return period


def validation_reusable(
    *,
    validated_at: datetime.datetime | None,
    method: str,
    now: datetime.datetime,
    configured: int | None,
) -> bool:
    """Whether a certificate may be issued at `now` on the strength of the validation
    made at `validated_at`, without a new one."""
    if validated_at is None:
        return False
    return now - validated_at < reuse_period(on=now, method=method, configured=configured)


def renewal_due_at(
    *, issued_at: datetime.datetime, not_after: datetime.datetime, percent: int
) -> datetime.datetime:
    """When `percent` of the certificate's lifetime is left. The lifetime counts from its
    issuance, not from notBefore, which is backdated a few minutes for slow clocks."""
    if not 0 < percent < 100:
        raise ValueError(f"The renewal percentage must be between 1 and 99, not {percent}.")
    return not_after - (not_after - issued_at) * percent / 100
