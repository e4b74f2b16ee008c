"""An SMTP server for the fault tests, in the test process: it accepts, refuses, holds DATA
without answering, or is not there at all."""

import asyncio
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller


@dataclass
class SmtpServer:
    """A real SMTP server in the test process that accepts, refuses (a 4xx or 5xx reply to
    DATA), is not there at all (stopped), or is slow: it holds a message's DATA without an
    answer, either before accepting it (`hold()`: a client that dies meanwhile gets no reply
    and the message is dropped, as nothing was accepted) or after (`hold(accepted=True)`:
    the message is kept whatever happens to the client, whose 250 reply may never come)."""

    port: int
    hostname: str = "127.0.0.1"
    messages: list[EmailMessage] = field(default_factory=list)
    # (time.time(), reply) of every DATA command, refused ones included.
    attempts: list[tuple[float, str]] = field(default_factory=list)
    reply: str | None = None  # e.g. "451 4.3.0 try later"; None accepts
    # The client's (address, port) of each accepted message: one port, one connection.
    peers: list[tuple] = field(default_factory=list)
    # Once this many messages are accepted, the next DATA is answered 421 and the server
    # goes away (stopped), until start() again.
    down_after: int | None = None
    # Once this many messages are accepted, the next ones are held as by hold().
    hold_after: int | None = None
    holding: int = 0  # messages held without an answer at the moment
    _hold: str = ""  # "", "before" or "after" (accepting)
    _controller: Controller | None = None
    _lock: threading.Condition = field(default_factory=threading.Condition)

    async def handle_DATA(self, server, session, envelope):
        if self.hold_after is not None and len(self.messages) >= self.hold_after:
            self.hold_after, self._hold = None, "before"
        if self._hold == "before":
            await self._held()  # cancelled, with the client's connection, if it dies
        with self._lock:
            if self.down_after is not None and len(self.messages) >= self.down_after:
                self.down_after = None
                self.attempts.append((time.time(), "421"))
                self._controller.server.close()  # no new connection from now on
                threading.Thread(target=self.stop).start()  # not from the server's own loop
                return "421 4.3.2 Service shutting down"
            self.attempts.append((time.time(), self.reply or "250"))
            if self.reply:
                return self.reply
            message = message_from_bytes(envelope.content, policy=policy.default)
            message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
            self.messages.append(message)
            self.peers.append(tuple(session.peer[:2]))
            self._lock.notify_all()
        if self._hold == "after":
            await self._held()
        return "250 OK"

    async def _held(self) -> None:
        with self._lock:
            self.holding += 1
        try:
            while self._hold:
                await asyncio.sleep(0.02)
        finally:
            with self._lock:
                self.holding -= 1

    # Modes.

    def start(self) -> None:
        self._controller = Controller(self, hostname=self.hostname, port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def up(self) -> bool:
        return self._controller is not None

    def hold(self, *, accepted: bool = False) -> None:
        self._hold = "after" if accepted else "before"

    def release(self) -> None:
        self._hold = ""

    # What arrived.

    def wait_for(self, count: int, *, timeout: float = 30.0) -> list[EmailMessage]:
        with self._lock:
            if not self._lock.wait_for(lambda: len(self.messages) >= count, timeout=timeout):
                raise AssertionError(
                    f"{count} messages expected within {timeout} s, {len(self.messages)} came"
                )
            return list(self.messages)

    def with_subject(self, text: str) -> list[EmailMessage]:
        with self._lock:
            return [m for m in self.messages if text in m["Subject"]]
