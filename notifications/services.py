"""Queueing, sending and resending emails. Plain values in: a target object, a recipient,
a language and a template context; nothing here knows what a platform is.

A live secret the recipient needs (a validation code, a link carrying a token) is put in
the context as a `Secret`: the stored copy people read shows it masked, and the message
as sent exists only encrypted until it is sent (notifications.models)."""

import contextlib
import json
import smtplib
import uuid
from dataclasses import dataclass
from email.header import Header
from email.message import Message
from email.utils import make_msgid

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import IntegrityError, models, transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation

from notifications.models import Email
from outbox import owed
from outbox.encryption import DecryptionError, decrypt, encrypt

SUPPORTED_LANGUAGES = ("fr", "en")
MASK = "•••••-•••••"


@dataclass(frozen=True)
class Secret:
    """A value only the recipient may read. `hidden` is the part to mask (a link's token:
    the rest of the link stays readable); empty, the whole value is."""

    value: str
    hidden: str = ""

    def __post_init__(self) -> None:
        if self.hidden not in self.value:  # masking nothing would store the value in clear
            raise ValueError("The part to mask is not in the value.")

    @property
    def masked(self) -> str:
        return self.value.replace(self.hidden, MASK) if self.hidden else MASK


class EmailAlreadyQueued(Exception):
    """This target already has an email of this kind; only a person may ask for another."""


def render_email(*, kind: str, language: str, context: dict) -> tuple[str, str, str]:
    """Subject, text body and HTML body from templates/notifications/<kind>/<language>.*"""
    language = language if language in SUPPORTED_LANGUAGES else "en"
    base = f"notifications/{kind}/{language}"
    # Dates and numbers in the email's language, whatever the request that queues it uses.
    with translation.override(language):
        subject = render_to_string(f"{base}.subject.txt", context)
        text = render_to_string(f"{base}.txt", context)
        html = render_to_string(f"{base}.html", context)
    # A header is one line: whatever a field contains, no CR/LF reaches the subject.
    return " ".join(subject.split()), text, html


def _new_message_id() -> str:
    domain = settings.DEFAULT_FROM_EMAIL.rsplit("@", 1)[-1].strip("> ") or "localhost"
    return make_msgid(idstring=uuid.uuid4().hex[:12], domain=domain)


def email_queue(
    *,
    target: models.Model,
    kind: str,
    recipient: str,
    language: str,
    context: dict,
    sender: str = "",
    resend_of: Email | None = None,
    requested_by: str = "",
) -> Email:
    """Render and queue an email about the target; it is sent after commit.

    A `Secret` in the context is masked in the subject and bodies stored in clear; the
    message with its real value is stored only encrypted, until it is sent. A target gets
    one email of each kind (EmailAlreadyQueued otherwise); a copy a person asked for names
    the original in `resend_of` and is rendered anew (fresh links, codes)."""
    secrets = {name: value for name, value in context.items() if isinstance(value, Secret)}
    masked = {name: secret.masked for name, secret in secrets.items()}
    subject, text, html = render_email(kind=kind, language=language, context={**context, **masked})
    unmasked = ""
    if secrets:
        values = {name: secret.value for name, secret in secrets.items()}
        sent_subject, sent_text, sent_html = render_email(
            kind=kind, language=language, context={**context, **values}
        )
        sent = {"subject": sent_subject, "text": sent_text, "html": sent_html}
        unmasked = encrypt(json.dumps(sent).encode())
    email = Email(
        target_type=ContentType.objects.get_for_model(target),
        target_id=target.pk,
        kind=kind,
        sender=sender,
        recipient=recipient,
        language=language,
        subject=subject,
        body_text=text,
        body_html=html,
        unmasked_encrypted=unmasked,
        message_id=_new_message_id(),
        resend_of=_original(resend_of),
        requested_by=requested_by,
    )
    try:
        # Its only write, atomic on its own: in the caller's transaction (every stage's),
        # one savepoint rather than two.
        with transaction.atomic():
            owed.owe(email)
    except IntegrityError:
        raise EmailAlreadyQueued(f"{kind} email already exists for {target}") from None
    return email


def _original(email: Email | None) -> Email | None:
    if email is None:
        return None
    return email.resend_of or email


def email_send(*, email_id: int) -> None:
    """Send one queued email over SMTP: once, or retried with backoff on a temporary
    failure (4xx, connection refused, timeout); a permanent refusal (5xx) marks it failed."""
    email = _claim(email_id)
    if email is not None:
        with _Connection() as connection:
            _send_claimed(email, connection)


def emails_send(*, email_ids: list[int]) -> list[int]:
    """Send several queued emails over one SMTP connection (a sweep's batch), one after
    the other, each exactly as `email_send` sends one: claimed just before its message goes
    out, finished as soon as the server accepted it, retried or failed alone when it is
    refused. A row another worker has (or has sent) is skipped by its claim.

    When the server cannot be reached (down, timing out), the rows not yet claimed are
    not tried over it: their ids are returned, still owed and untouched, for the caller to
    send one by one (`email_send`). A worker killed mid-batch leaves the row it was
    sending to its lease and the others owed; the sweep sends both again."""
    with _Connection() as connection:
        for position, email_id in enumerate(email_ids):
            email = _claim(email_id)
            if email is not None and not _send_claimed(email, connection):
                return list(email_ids[position + 1 :])
    return []


def _claim(email_id: int) -> Email | None:
    return owed.claim(Email, email_id, lease_seconds=settings.EMAIL_TIMEOUT * 4 + 60)


class _Connection:
    """Django's mail backend, opened at the first message and again after a failure (the
    SMTP session is then in an unknown state), closed at the end."""

    def __init__(self) -> None:
        self.backend = None

    def __enter__(self) -> "_Connection":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def send(self, message: EmailMultiAlternatives) -> None:
        if self.backend is None:
            self.backend = get_connection(fail_silently=False)
            self.backend.open()
        self.backend.send_messages([message])

    def close(self) -> None:
        backend, self.backend = self.backend, None
        if backend is not None:
            with contextlib.suppress(Exception):  # a broken session is dropped as it is
                backend.close()


def _send_claimed(email: Email, connection: _Connection) -> bool:
    """Send the claimed row's message and record the outcome on the row. False when the
    server could not be reached (nothing more is to be tried over this connection)."""
    try:
        message = _OutboxMessage(email)
    except DecryptionError:
        _failed(email, "No key in FIELD_ENCRYPTION_KEY opens this email; resend it.", True)
        return True
    try:
        connection.send(message)
    except smtplib.SMTPRecipientsRefused as error:
        connection.close()
        codes = [code for code, _ in error.recipients.values()]
        _failed(
            email, f"SMTP refused the recipient: {error.recipients}", all(c >= 500 for c in codes)
        )
    except smtplib.SMTPResponseException as error:
        connection.close()
        detail = f"SMTP {error.smtp_code}: {_text(error.smtp_error)}"
        _failed(email, detail, permanent=error.smtp_code >= 500)
    except (TimeoutError, smtplib.SMTPException, OSError) as error:
        connection.close()
        _failed(email, f"SMTP unreachable: {error!r}", permanent=False)
        return False
    else:
        # Sent: nothing live is kept (a resend renders anew).
        owed.finish(email, sent_at=timezone.now(), last_error="", unmasked_encrypted="")
    return True


class _OutboxMessage(EmailMultiAlternatives):
    """An outbox row as Django's mail backends take it (SMTP, or locmem in tests)."""

    def __init__(self, email: Email) -> None:
        sent = _as_sent(email)
        super().__init__(
            subject=sent["subject"],
            body=sent["text"],
            from_email=email.sender or settings.DEFAULT_FROM_EMAIL,
            to=[email.recipient],
            headers={"Message-ID": email.message_id},
        )
        self.attach_alternative(sent["html"], "text/html")

    def message(self):
        message = super().message()
        if not self.subject.isascii():
            # Django 5.2 folds an encoded subject right after "Subject:", which readers
            # show as a leading space; a Header that knows its name folds cleanly.
            del message["Subject"]
            Message.__setitem__(
                message, "Subject", Header(self.subject, "utf-8", header_name="Subject")
            )
        return message


def _as_sent(email: Email) -> dict:
    """Subject, text and HTML as the recipient gets them, secrets decrypted in memory."""
    if email.unmasked_encrypted:
        return json.loads(decrypt(email.unmasked_encrypted))
    return {"subject": email.subject, "text": email.body_text, "html": email.body_html}


def _text(value) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _failed(email: Email, error: str, permanent: bool) -> None:
    if permanent:
        owed.give_up(email, error)
    elif owed.retry_later(email, error, max_attempts=settings.EMAIL_MAX_ATTEMPTS):
        return
    # Never to be sent: its secrets go too (a resend renders anew).
    Email.objects.filter(pk=email.pk).update(unmasked_encrypted="")
