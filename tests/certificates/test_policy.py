"""The CA/B Forum's limits by date (ballots SC-081 and SC-090), at each boundary."""

import datetime

import pytest

from certificates import policy

UTC = datetime.UTC
DAYS = datetime.timedelta(days=1)


def at(day: str, time: str = "00:00:00") -> datetime.datetime:
    return datetime.datetime.fromisoformat(f"{day}T{time}+00:00")


@pytest.mark.parametrize(
    ("moment", "days"),
    [
        (at("2026-03-14", "23:59:59"), 398),
        (at("2026-03-15"), 200),
        (at("2027-03-14", "23:59:59"), 200),
        (at("2027-03-15"), 100),
        (at("2029-03-14", "23:59:59"), 100),
        (at("2029-03-15"), 47),
        (at("2040-01-01"), 47),
    ],
)
def test_max_lifetime_steps_down_on_the_ballot_dates(moment, days):
    assert policy.max_lifetime(on=moment) == days * DAYS


def test_the_day_is_the_utc_day():
    # 2026-03-15 00:30 in Paris is still the 14th in UTC: the old limit holds.
    paris = datetime.timezone(datetime.timedelta(hours=1))
    assert policy.max_lifetime(on=datetime.datetime(2026, 3, 15, 0, 30, tzinfo=paris)) == 398 * DAYS


@pytest.mark.parametrize(
    ("moment", "days"),
    [(at("2026-03-15"), 199), (at("2027-03-15"), 99), (at("2029-03-15"), 46)],
)
def test_internal_ca_issues_a_day_short_of_the_maximum(moment, days):
    assert policy.certificate_lifetime(on=moment, configured=None) == days * DAYS


def test_a_shorter_configured_lifetime_wins_a_longer_one_is_capped():
    on = at("2027-03-15")
    assert policy.certificate_lifetime(on=on, configured=120) == datetime.timedelta(seconds=120)
    assert policy.certificate_lifetime(on=on, configured=365 * 86400) == 99 * DAYS


@pytest.mark.parametrize(
    ("moment", "days"),
    [
        (at("2026-03-14", "23:59:59"), 398),
        (at("2026-03-15"), 200),
        (at("2027-03-14", "23:59:59"), 200),
        (at("2027-03-15"), 100),
        (at("2029-03-14", "23:59:59"), 100),
        (at("2029-03-15"), 10),
    ],
)
def test_dns_validation_reuse_period_steps_down(moment, days):
    assert policy.max_reuse_period(on=moment, method="dns") == days * DAYS
    assert policy.max_reuse_period(on=moment, method="acme") == days * DAYS


def test_an_email_validation_is_never_reused_from_2028_03_15():
    assert policy.max_reuse_period(on=at("2028-03-14", "23:59:59"), method="email") == 100 * DAYS
    assert policy.max_reuse_period(on=at("2028-03-15"), method="email") == datetime.timedelta(0)
    assert policy.max_reuse_period(on=at("2028-03-15"), method="dns") == 100 * DAYS


def test_configured_reuse_period_only_shortens():
    on = at("2029-03-15")
    assert policy.reuse_period(on=on, method="dns", configured=0) == datetime.timedelta(0)
    assert policy.reuse_period(on=on, method="dns", configured=3600) == datetime.timedelta(hours=1)
    assert policy.reuse_period(on=on, method="dns", configured=30 * 86400) == 10 * DAYS


def test_validation_reusable_until_the_period_ends():
    now = at("2027-06-01")
    reusable = lambda validated_at, **kw: policy.validation_reusable(  # noqa: E731
        validated_at=validated_at, now=now, **{"method": "dns", "configured": None, **kw}
    )
    assert reusable(now - 99 * DAYS)
    assert not reusable(now - 100 * DAYS)
    assert not reusable(None)
    assert not reusable(now - DAYS, configured=0)
    assert reusable(now - DAYS, method="email")
    later = at("2028-03-15", "00:00:01")
    assert not policy.validation_reusable(
        validated_at=later - datetime.timedelta(seconds=2),
        method="email",
        now=later,
        configured=None,
    )


def test_renewal_is_due_when_the_percentage_is_left():
    issued = at("2027-01-01")
    not_after = issued + datetime.timedelta(seconds=120)
    due = policy.renewal_due_at(issued_at=issued, not_after=not_after, percent=33)
    assert due == issued + datetime.timedelta(seconds=80.4)
    assert policy.renewal_due_at(
        issued_at=issued, not_after=issued + 199 * DAYS, percent=33
    ) == issued + datetime.timedelta(days=133.33)


@pytest.mark.parametrize("percent", [0, 100, -5])
def test_renewal_percentage_out_of_range_is_refused(percent):
    with pytest.raises(ValueError, match="between 1 and 99"):
        policy.renewal_due_at(
            issued_at=at("2027-01-01"), not_after=at("2027-02-01"), percent=percent
        )
