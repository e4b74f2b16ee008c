"""ACME (RFC 8555) with DNS-01 validation, over the `acme` library.

No database here: plain values in (directory URL, account key, CSR, a DNS writer), results
out; certificates.services stores them. Every failure leaves as one AcmeError, whose
`transient` flag says whether trying again later can help.
"""

import datetime
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

import josepy as jose
import requests
from acme import challenges, client, errors, messages

from certificates import crypto
from outbox.errors import PortalError

logger = logging.getLogger(__name__)

USER_AGENT = "private-exchange-portal"
NETWORK_TIMEOUT = 30  # seconds, for each HTTP request
# Problems the CA reports about itself rather than about our request.
TRANSIENT_PROBLEMS = {"rateLimited", "serverInternal", "badNonce"}


class AcmeError(PortalError):
    """Talking to the ACME CA failed; `message` says what happened, in plain words."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message, transient=transient)


class DnsWriter(Protocol):
    """Writes TXT records into an authoritative zone (the zones app's DNS Assist writer).

    `zone` and `name` are lower-case A-labels without the trailing dot; `name` is the
    record's full owner name, e.g. ``_acme-challenge.exchange.example.com`` in zone
    ``example.com``."""

    def set_txt(self, *, zone: str, name: str, value: str, ttl: int) -> None: ...

    def delete_txt(self, *, zone: str, name: str, value: str) -> None: ...


@dataclass(frozen=True)
class TxtRecord:
    """The DNS-01 record the CA will query: full owner name and value."""

    name: str
    value: str


@dataclass(frozen=True)
class PendingOrder:
    url: str
    record: TxtRecord


@dataclass(frozen=True)
class IssuedChain:
    certificate_pem: str
    chain_pem: str  # intermediates, leaf excluded


@dataclass(frozen=True)
class AcmeSession:
    """A client registered with one CA under one account key."""

    directory_url: str
    client: client.ClientV2
    key: jose.JWK
    account_uri: str


def account_key_generate() -> bytes:
    """A PEM key for a new account: P-256 signs quickly and is accepted by every ACME CA."""
    return crypto.private_key_pem(crypto.private_key_generate(key_type="ec-p256"))


@dataclass(frozen=True)
class ExternalAccount:
    """External Account Binding (RFC 8555 §7.3.4): the key identifier and MAC key
    (base64url) a commercial CA gives with the customer account an ACME account binds to."""

    kid: str
    hmac_key: str


def session_open(
    *,
    directory_url: str,
    ca_bundle: str,
    account_key_pem: bytes,
    contact_email: str,
    external_account: ExternalAccount | None = None,
) -> AcmeSession:
    """Find the account of this key on the CA, registering it when the CA does not know it
    (first use, or a CA that lost its state), bound to the external account if given."""
    key = jose.JWKEC(key=crypto.private_key_load(account_key_pem))
    net = client.ClientNetwork(
        key,
        alg=jose.ES256,
        verify_ssl=ca_bundle or True,  # requests takes a CA bundle path here
        user_agent=USER_AGENT,
        timeout=NETWORK_TIMEOUT,
    )
    with _translated_errors("register the ACME account", directory_url):
        directory = client.ClientV2.get_directory(directory_url, net)
        acme = client.ClientV2(directory, net)
        binding = None
        if external_account is not None:
            binding = _external_account_binding(key, external_account, directory)
        registration = messages.NewRegistration.from_data(
            email=contact_email or None,
            terms_of_service_agreed=True,
            external_account_binding=binding,
        )
        try:
            account_uri = acme.new_account(registration).uri
        except errors.ConflictError as existing:
            account_uri = existing.location
            net.account = messages.RegistrationResource(
                uri=account_uri, body=messages.Registration()
            )
    return AcmeSession(directory_url=directory_url, client=acme, key=key, account_uri=account_uri)


def order_start(*, session: AcmeSession, csr_pem: str) -> PendingOrder:
    """A new order for the CSR's name, and the TXT record that will prove control of it."""
    with _translated_errors("open a certificate order", session):
        order = session.client.new_order(csr_pem.encode("ascii"))
        return _pending(session, order)


def order_resume(*, session: AcmeSession, order_url: str, csr_pem: str) -> PendingOrder | None:
    """The order when the CA can still complete it, else None: start a new one."""
    try:
        with _translated_errors("read the certificate order", session):
            order = _order_load(session, order_url, csr_pem)
    except AcmeError as error:
        if error.transient:
            raise
        return None  # the CA forgot it
    expired = order.body.expires is not None and order.body.expires <= _utcnow()
    if order.body.status == messages.STATUS_INVALID or expired:
        return None
    return _pending(session, order)


def order_complete(
    *, session: AcmeSession, order_url: str, csr_pem: str, timeout: float
) -> IssuedChain:
    """Tell the CA the TXT record is served, wait for its check, then finalize with the
    CSR and download the chain. A record not (yet) served fails the order for good."""
    # Naive on purpose: the acme library compares it with datetime.now().
    deadline = datetime.datetime.now() + datetime.timedelta(seconds=timeout)
    with _translated_errors("complete the certificate order", session):
        order = _order_load(session, order_url, csr_pem)
        for authorization in order.authorizations:
            challenge = _dns01(authorization)
            if challenge.status == messages.STATUS_PENDING:
                session.client.answer_challenge(challenge, challenge.response(session.key))
        order = session.client.poll_authorizations(order, deadline)
        order = session.client.finalize_order(order, deadline)
    certificates = crypto.certificates_load(order.fullchain_pem)
    return IssuedChain(
        certificate_pem=crypto.certificate_pem(certificates[0]),
        chain_pem="".join(crypto.certificate_pem(cert) for cert in certificates[1:]),
    )


def certificate_revoke(*, session: AcmeSession, certificate_pem: str, reason: int) -> None:
    """Ask the CA to revoke the certificate (RFC 8555 §7.6), signed with the account key
    that ordered it. One the CA already revoked counts as done."""
    certificate = crypto.certificates_load(certificate_pem)[0]
    with _translated_errors("revoke the certificate", session):
        try:
            session.client.revoke(certificate, reason)
        except messages.Error as problem:
            if problem.code != "alreadyRevoked":
                raise


def dns01_complete(
    *,
    session: AcmeSession,
    pending: PendingOrder,
    csr_pem: str,
    dns_writer: DnsWriter,
    zone: str,
    ttl: int,
    timeout: float,
) -> IssuedChain:
    """DNS Assist: write the TXT record, complete the order, and remove the record again,
    whatever the outcome. Errors of the writer itself are its own (not AcmeError)."""
    record = pending.record
    dns_writer.set_txt(zone=zone, name=record.name, value=record.value, ttl=ttl)
    try:
        return order_complete(
            session=session, order_url=pending.url, csr_pem=csr_pem, timeout=timeout
        )
    finally:
        try:
            dns_writer.delete_txt(zone=zone, name=record.name, value=record.value)
        except Exception:
            # A left-over challenge record is harmless; losing the certificate would not be.
            logger.warning("Could not remove the ACME challenge record %s", record.name)


def _external_account_binding(
    key: jose.JWK, external_account: ExternalAccount, directory: messages.Directory
) -> dict:
    try:
        return messages.ExternalAccountBinding.from_data(
            account_public_key=key.public_key(),
            kid=external_account.kid,
            hmac_key=external_account.hmac_key,
            directory=directory,
        )
    except (ValueError, jose.DeserializationError) as error:
        raise AcmeError(
            f"ACME_EAB_HMAC_KEY is not a valid base64url key ({error}).", transient=False
        ) from error


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(tz=datetime.UTC)


def _post_as_get(session: AcmeSession, url: str) -> requests.Response:
    return session.client.net.post(url, None, new_nonce_url=session.client.directory["newNonce"])


def _order_load(session: AcmeSession, order_url: str, csr_pem: str) -> messages.OrderResource:
    body = messages.Order.from_json(_post_as_get(session, order_url).json())
    authorizations = [
        messages.AuthorizationResource(
            body=messages.Authorization.from_json(_post_as_get(session, url).json()), uri=url
        )
        for url in body.authorizations
    ]
    return messages.OrderResource(
        body=body, uri=order_url, authorizations=authorizations, csr_pem=csr_pem.encode("ascii")
    )


def _dns01(authorization: messages.AuthorizationResource) -> messages.ChallengeBody:
    for challenge in authorization.body.challenges:
        if isinstance(challenge.chall, challenges.DNS01):
            return challenge
    raise AcmeError(
        "The certificate authority does not offer DNS validation for "
        f"{authorization.body.identifier.value}.",
        transient=False,
    )


def _pending(session: AcmeSession, order: messages.OrderResource) -> PendingOrder:
    if len(order.authorizations) != 1:
        raise AcmeError(
            "The certificate order should cover one name; the certificate authority "
            f"asks for {len(order.authorizations)} validations.",
            transient=False,
        )
    authorization = order.authorizations[0]
    challenge = _dns01(authorization)
    record = TxtRecord(
        name=challenge.chall.validation_domain_name(authorization.body.identifier.value),
        value=challenge.chall.validation(session.key),
    )
    return PendingOrder(url=order.uri, record=record)


def _problem_text(problem: messages.Error | None) -> str:
    if problem is None:
        return "no reason given"
    return problem.detail or problem.description or problem.typ


@contextmanager
def _translated_errors(action: str, where: AcmeSession | str) -> Iterator[None]:
    """Turn the library's and the network's exceptions into AcmeError."""
    server = where if isinstance(where, str) else where.directory_url
    try:
        yield
    except errors.ValidationError as error:
        reasons = "; ".join(
            f"{authorization.body.identifier.value}: {_problem_text(challenge.error)}"
            for authorization in error.failed_authzrs
            for challenge in authorization.body.challenges
            if challenge.error is not None
        )
        raise AcmeError(
            f"The certificate authority could not validate the DNS record ({reasons}).",
            transient=False,
        ) from error
    except errors.IssuanceError as error:
        raise AcmeError(
            f"The certificate authority refused to issue the certificate "
            f"({_problem_text(error.error)}).",
            transient=False,
        ) from error
    except errors.TimeoutError as error:
        raise AcmeError(
            f"The certificate authority did not finish in time when asked to {action}.",
            transient=True,
        ) from error
    except messages.Error as problem:
        if problem.code == "externalAccountRequired":
            raise AcmeError(
                "The certificate authority requires an external account binding: set "
                f"ACME_EAB_KID and ACME_EAB_HMAC_KEY ({_problem_text(problem)}).",
                transient=False,
            ) from problem
        transient = problem.code in TRANSIENT_PROBLEMS
        raise AcmeError(
            f"The certificate authority refused to {action} ({_problem_text(problem)}).",
            transient=transient,
        ) from problem
    except errors.ClientError as error:
        response = error.args[0] if error.args else None
        status = getattr(response, "status_code", None)
        raise AcmeError(
            f"The certificate authority gave an unexpected answer when asked to {action}"
            + (f" (HTTP {status})." if status else "."),
            transient=status is not None and status >= 500,
        ) from error
    except requests.RequestException as error:
        raise AcmeError(
            f"Could not reach the certificate authority at {server} to {action} "
            f"({type(error).__name__}).",
            transient=True,
        ) from error
    except (errors.Error, jose.DeserializationError) as error:
        raise AcmeError(
            f"The certificate authority gave an unexpected answer when asked to {action} "
            f"({error}).",
            transient=False,
        ) from error
