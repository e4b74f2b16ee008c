"""DNS Assist for a mail domain: write its records into the account's zone with a writer,
and later take back exactly what was written.

It goes in two steps. ``mail_assist_plan`` reads the zone and says what will change: the
records to add, the record sets replaced in authoritative mode (the MX set, and the
autodiscover SRV) with the values that will go, for the customer to confirm, and how the
SPF record will be merged. The caller stores the plan (``as_dict``) BEFORE writing, so that a
write cut short by a fault can be run again or undone: ``mail_assist_write`` makes the zone
as planned, ``mail_assist_undo`` takes back what the plan added (an SPF merge is undone, not
the record deleted; a replaced set is restored only if nobody changed it since). Both are
idempotent, and touch no record they did not plan.
"""

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

from zones.errors import DnsConflictError, DnsWriteError
from zones.mail import (
    DMARC_NAME,
    MailRecords,
    RecordPurpose,
    ServedMail,
    is_dmarc,
    spf_is_skeleton,
    spf_merge,
    spf_new,
    spf_records,
    spf_unmerge,
)
from zones.records import InvalidValue, record_rdata, record_value
from zones.writers import DnsWriter

# The purposes whose record sets become the platform's alone in authoritative mode: mail and
# Outlook's autodiscover must not go to the previous server as well.
REPLACED_IN_AUTHORITATIVE_MODE = (RecordPurpose.MX, RecordPurpose.AUTODISCOVER)
# DNS Assist writes what the domain needs; a DMARC policy stays the customer's choice.
WRITTEN = (RecordPurpose.MX, RecordPurpose.AUTODISCOVER, RecordPurpose.DKIM)
# Reads and writes of the SPF record raced by another change of the same TXT set.
SPF_ATTEMPTS = 3


@dataclass(frozen=True)
class PlannedSet:
    """One record set (name and type) DNS Assist adds its values to, or replaces."""

    name: str
    rtype: str
    ours: tuple[str, ...]  # what the set must hold
    before: tuple[str, ...]  # what it held when the plan was made
    replace: bool  # the set becomes ours alone

    @property
    def added(self) -> tuple[str, ...]:
        return tuple(value for value in self.ours if value not in self.before)

    @property
    def removed(self) -> tuple[str, ...]:
        return tuple(v for v in self.before if v not in self.ours) if self.replace else ()


@dataclass(frozen=True)
class MailAssistPlan:
    zone: str
    domain: str
    ttl: int
    sets: tuple[PlannedSet, ...]
    spf_mechanisms: tuple[str, ...]
    spf_added: tuple[str, ...]  # the terms the merge inserts into the existing SPF record
    spf_created: bool  # there was none: DNS Assist creates it
    spf_before: str | None = None  # the SPF record when the plan was made

    def removed_records(self) -> tuple[tuple[str, str, str], ...]:
        """(name, type, value) of each record the write takes out: to confirm first."""
        return tuple((s.name, s.rtype, value) for s in self.sets for value in s.removed)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "MailAssistPlan":
        sets = tuple(
            PlannedSet(
                name=s["name"],
                rtype=s["rtype"],
                ours=tuple(s["ours"]),
                before=tuple(s["before"]),
                replace=s["replace"],
            )
            for s in data["sets"]
        )
        return cls(
            **{key: data[key] for key in ("zone", "domain", "ttl", "spf_created", "spf_before")},
            sets=sets,
            spf_mechanisms=tuple(data["spf_mechanisms"]),
            spf_added=tuple(data["spf_added"]),
        )


def served_mail(*, writer: DnsWriter, zone: str, domain: str) -> ServedMail:
    """What the zone serves that mail_records takes into account, read from the writer's
    store (the primary itself)."""
    spfs = spf_records(writer.read_records(zone=zone, name=domain, rtype="TXT"))
    dmarc = writer.read_records(zone=zone, name=f"{DMARC_NAME}.{domain}", rtype="TXT")
    return ServedMail(spf=spfs[0] if spfs else None, has_dmarc=any(map(is_dmarc, dmarc)))


def mail_assist_plan(
    *, writer: DnsWriter, mail: MailRecords, authoritative: bool
) -> MailAssistPlan:
    """Reads the zone; changes nothing."""
    sets: dict[tuple[str, str], list[str]] = {}
    purposes: dict[tuple[str, str], RecordPurpose] = {}
    for record in mail.records:
        if record.purpose in WRITTEN:
            key = (record.name, record.rtype)
            sets.setdefault(key, []).append(_normal(record.rtype, record.value))
            purposes[key] = record.purpose
    planned = tuple(
        PlannedSet(
            name=name,
            rtype=rtype,
            ours=tuple(ours),
            before=writer.read_records(zone=mail.zone, name=name, rtype=rtype),
            replace=authoritative and purposes[name, rtype] in REPLACED_IN_AUTHORITATIVE_MODE,
        )
        for (name, rtype), ours in sets.items()
    )
    spf = _single_spf(writer.read_records(zone=mail.zone, name=mail.domain, rtype="TXT"), mail)
    added = spf_merge(spf, mechanisms=mail.spf_mechanisms)[1] if spf else mail.spf_mechanisms
    ttl = mail.records[0].ttl
    return MailAssistPlan(
        zone=mail.zone,
        domain=mail.domain,
        ttl=ttl,
        sets=planned,
        spf_mechanisms=mail.spf_mechanisms,
        spf_added=added,
        spf_created=spf is None,
        spf_before=spf,
    )


def mail_assist_write(*, writer: DnsWriter, plan: MailAssistPlan) -> None:
    """Make the zone as planned. DnsConflictError (permanent) when a replaced set changed
    since the plan was made: the customer confirmed other values, so a new plan is needed."""
    for planned in plan.sets:
        if planned.replace:
            writer.change_records(
                zone=plan.zone,
                name=planned.name,
                rtype=planned.rtype,
                ttl=plan.ttl,
                remove=planned.removed,
                add=planned.ours,
                expect=planned.before,
            )
        else:
            writer.change_records(
                zone=plan.zone,
                name=planned.name,
                rtype=planned.rtype,
                ttl=plan.ttl,
                add=planned.ours,
            )

    def merged(spf: str | None) -> str | None:
        if spf is None:
            return spf_new(plan.spf_mechanisms)
        return spf_merge(spf, mechanisms=plan.spf_mechanisms)[0]

    _change_spf(writer, plan, merged)


def mail_assist_undo(*, writer: DnsWriter, plan: MailAssistPlan) -> None:
    """Take back what the plan added, keeping whatever else the zone holds now."""

    def unmerged(spf: str | None) -> str | None:
        if spf is None:
            return None
        remaining = spf_unmerge(spf, added=plan.spf_added)
        if remaining == spf:  # none of ours there (a write cut short): not ours to delete
            return spf
        return None if plan.spf_created and spf_is_skeleton(remaining) else remaining

    _change_spf(writer, plan, unmerged)
    for planned in plan.sets:
        held = writer.read_records(zone=plan.zone, name=planned.name, rtype=planned.rtype)
        # Restore what was replaced only while the set is still ours: a customer who has
        # pointed it elsewhere since meant it.
        restore = planned.removed if set(held) == set(planned.ours) else ()
        writer.change_records(
            zone=plan.zone,
            name=planned.name,
            rtype=planned.rtype,
            ttl=plan.ttl,
            remove=planned.added,
            add=restore,
            expect=held if restore else None,
        )


def _change_spf(
    writer: DnsWriter, plan: MailAssistPlan, change: Callable[[str | None], str | None]
) -> None:
    """Replace the domain's SPF string by change(it), keeping the other TXT records; the TXT
    set read is the update's prerequisite, and a race is read again."""
    for attempt in range(SPF_ATTEMPTS):
        held = writer.read_records(zone=plan.zone, name=plan.domain, rtype="TXT")
        spf = _single_spf(held, plan)
        wanted = change(spf)
        if wanted == spf:
            return
        try:
            writer.change_records(
                zone=plan.zone,
                name=plan.domain,
                rtype="TXT",
                ttl=plan.ttl,
                remove=[spf] if spf is not None else [],
                add=[wanted] if wanted is not None else [],
                expect=held,
            )
            return
        except DnsConflictError:
            if attempt == SPF_ATTEMPTS - 1:
                raise


def _single_spf(values: Iterable[str], where: MailRecords | MailAssistPlan) -> str | None:
    spfs = spf_records(values)
    if len(spfs) > 1:
        raise DnsWriteError(
            f"{where.domain} has {len(spfs)} SPF records, which makes every one of them void "
            "(RFC 7208 3.2): merge them into one, then try again.",
            transient=False,
        )
    return spfs[0] if spfs else None


def _normal(rtype: str, value: str) -> str:
    try:
        return record_value(record_rdata(rtype, value))
    except InvalidValue as error:
        raise DnsWriteError(str(error), transient=False) from None
