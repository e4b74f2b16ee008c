"""A local SMTP server for the embedded set-up: keeps every message it receives as an
.eml file and prints it, so a newcomer can read the portal's emails without a relay."""

import time
from email import message_from_bytes, policy
from pathlib import Path

from aiosmtpd.controller import Controller
from django.conf import settings
from django.core.management.base import BaseCommand


class _Keeper:
    def __init__(self, folder: Path, out) -> None:
        self.folder = folder
        self.out = out

    async def handle_DATA(self, server, session, envelope):
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = self.folder / f"{stamp}-{time.monotonic_ns()}.eml"
        path.write_bytes(envelope.content)
        message = message_from_bytes(envelope.content, policy=policy.default)
        text = message.get_body(preferencelist=("plain",))
        self.out.write(
            f"\n===== mail for {', '.join(envelope.rcpt_tos)} ({path.name})\n"
            f"Subject: {message['Subject']}\n\n{text.get_content() if text else ''}\n"
        )
        self.out.flush()
        return "250 Message accepted"


class Command(BaseCommand):
    help = "Run a local SMTP sink that stores and prints every message (embedded set-up)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=settings.EMAIL_HOST)
        parser.add_argument("--port", type=int, default=settings.EMAIL_PORT)

    def handle(self, *args, host, port, **options):
        folder = Path(settings.VAR_DIR) / "mail"
        folder.mkdir(parents=True, exist_ok=True)
        controller = Controller(_Keeper(folder, self.stdout), hostname=host, port=port)
        controller.start()
        self.stdout.write(f"Mail sink on {host}:{port}, messages kept in {folder}")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            controller.stop()
