"""The embedded DNS store: the zones' records kept by the portal when no primary is set.

Only zones.writers.EmbeddedWriter writes here, so every change also bumps the zone's serial;
``manage.py export_zone`` turns a zone into a file a real DNS server can load.
"""

from django.db import models


class RecordType(models.TextChoices):
    A = "A", "A (IPv4 address)"
    AAAA = "AAAA", "AAAA (IPv6 address)"
    TXT = "TXT", "TXT (text)"
    MX = "MX", "MX (mail exchanger)"
    SRV = "SRV", "SRV (service)"
    CNAME = "CNAME", "CNAME (alias)"


class EmbeddedZone(models.Model):
    """A zone the portal has written to; created by its first record."""

    name = models.CharField(max_length=253, unique=True, help_text="A-label form, no final dot")
    serial = models.PositiveBigIntegerField(default=0, help_text="SOA serial, YYYYMMDDnn")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "embedded zone"

    def __str__(self) -> str:
        return self.name


class EmbeddedRecord(models.Model):
    zone = models.ForeignKey(EmbeddedZone, on_delete=models.CASCADE, related_name="records")
    name = models.CharField(max_length=253, help_text="Absolute owner name, no final dot")
    rtype = models.CharField("type", max_length=8, choices=RecordType.choices)
    ttl = models.PositiveIntegerField("TTL")
    value = models.CharField(max_length=2048)

    class Meta:
        ordering = ["zone", "name", "rtype", "value"]
        constraints = [
            models.UniqueConstraint(
                fields=["zone", "name", "rtype", "value"], name="zones_record_unique_value"
            )
        ]
        verbose_name = "embedded record"

    def __str__(self) -> str:
        return f"{self.name} {self.ttl} IN {self.rtype} {self.value}"
