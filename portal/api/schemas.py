"""What the API reads and answers, as pydantic models: the OpenAPI description is built
from them, and every answer is checked against them."""

from datetime import datetime
from typing import Literal

from ninja import Schema
from pydantic import Field

from provisioning.models import Language, PlatformState


class ErrorOut(Schema):
    error: str = Field(description="What is wrong, in plain words.")
    field: str | None = Field(
        None, description="The field of the body (or parameter) it concerns, if one."
    )


class OrderIn(Schema):
    account: str = Field(description="The account's NIC handle.", max_length=64)


class ReasonIn(Schema):
    reason: str = Field("", max_length=500, description="Shown to the customer.")


class DnsRecordOut(Schema):
    name: str
    type: str
    value: str


class CertificateOut(Schema):
    serial: str | None
    not_before: datetime | None
    not_after: datetime | None
    state: str
    method: Literal["email", "dns", "acme"]
    dns_record: DnsRecordOut | None


class DomainRecordOut(Schema):
    name: str
    type: str
    value: str
    status: Literal["ok", "missing", "wrong", "unchecked"]


class DomainOut(Schema):
    name: str
    mode: str
    state: str
    records: list[DomainRecordOut]


class OrderOut(Schema):
    service: str
    state: PlatformState
    account: str
    order_number: int
    server_name: str | None
    dns_assist: bool
    dns_state: str
    ipv4: str | None
    ipv6: str | None
    created_at: datetime
    updated_at: datetime
    ready_at: datetime | None
    suspension_reason: str | None = Field(description="Set while the state is suspended.")
    certificate: CertificateOut | None
    domains: list[DomainOut] = Field(default_factory=list)


class OrderPage(Schema):
    results: list[OrderOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


class AccountIn(Schema):
    nic: str = Field(max_length=32, description="NIC handle, e.g. xx-11111-ovh.")
    email: str = Field(max_length=254, description="The reference address.")
    language: Language = Language.FRENCH
    zones: list[str] = Field(default_factory=list, max_length=100)


class AccountPatch(Schema):
    email: str | None = Field(None, max_length=254)
    language: Language | None = None
    zones: list[str] | None = Field(None, max_length=100, description="The whole new list.")


class AccountOut(Schema):
    nic: str
    email: str
    language: Language
    zones: list[str]
    created_at: datetime
