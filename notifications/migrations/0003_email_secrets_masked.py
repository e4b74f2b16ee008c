"""Emails queued before secrets were masked hold their links' tokens and validation codes
in clear: mask them in the stored copy; one not yet sent keeps the message as it must be
sent, encrypted (outbox.encryption)."""

import json
import re

from django.db import migrations, models

from outbox.encryption import encrypt

MASK = "•••••-•••••"
BATCH_SIZE = 500
# The setup and validation links (portal/urls.py) and the display form of a validation
# code (certificates.dcv: five groups of five symbols of Crockford's base32).
LINK_TOKEN = re.compile(r"(/setup/|/dcv/\d+/)[^/\s\"'<>]+/")
CODE = re.compile(r"\b[0-9A-HJKMNP-TV-Z]{5}(?:-[0-9A-HJKMNP-TV-Z]{5}){4}\b")


def _masked(text: str) -> str:
    return CODE.sub(MASK, LINK_TOKEN.sub(lambda m: f"{m.group(1)}{MASK}/", text))


def mask_stored_secrets(apps, schema_editor):
    Email = apps.get_model("notifications", "Email")
    last_pk = 0
    while True:
        rows = list(Email.objects.filter(pk__gt=last_pk).order_by("pk")[:BATCH_SIZE])
        if not rows:
            return
        for email in rows:
            sent = {"subject": email.subject, "text": email.body_text, "html": email.body_html}
            masked = {part: _masked(value) for part, value in sent.items()}
            if masked == sent:
                continue
            if email.status in ("pending", "running"):
                email.unmasked_encrypted = encrypt(json.dumps(sent).encode())
            email.subject, email.body_text, email.body_html = masked.values()
            email.save(update_fields=["subject", "body_text", "body_html", "unmasked_encrypted"])
        last_pk = rows[-1].pk


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0002_email_sender"),
    ]

    operations = [
        migrations.AddField(
            model_name="email",
            name="unmasked_encrypted",
            field=models.TextField(
                blank=True,
                help_text="The message as sent, secrets included, encrypted; empty once sent "
                "or failed, and for a message without secrets (the columns above are sent).",
            ),
        ),
        migrations.RunPython(mask_stored_secrets, migrations.RunPython.noop),
    ]
