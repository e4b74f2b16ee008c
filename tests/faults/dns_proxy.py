"""A DNS resolver for the fault tests, in the test process: it passes each UDP query on to
the real server (BIND9) and its answer back, or holds the queries without an answer
(`hold()`), so that a worker can be caught in the middle of a DNS check."""

import select
import socket
import threading
import time

from harness.processes import free_port


class HoldingResolver:
    """Point DNS_CHECK_RESOLVERS at `address`; queries reach `upstream` (host, port)."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = free_port()
        self.holding = 0  # queries held without an answer at the moment
        self.forwarded = 0
        self._hold = False
        self._stop = threading.Event()
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", self.port))
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "HoldingResolver":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._socket.close()

    def hold(self) -> None:
        self._hold = True

    def release(self) -> None:
        """Answer nothing that was held (its asker timed out or died); pass on new queries."""
        self._hold = False

    def _serve(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self._socket], [], [], 0.05)
            if not ready:
                continue
            query, client = self._socket.recvfrom(65535)
            if self._hold:
                threading.Thread(target=self._held, daemon=True).start()
                continue
            threading.Thread(target=self._forward, args=(query, client), daemon=True).start()

    def _held(self) -> None:
        self.holding += 1
        while self._hold and not self._stop.is_set():
            time.sleep(0.02)
        self.holding -= 1

    def _forward(self, query: bytes, client) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as upstream:
            upstream.settimeout(5)
            upstream.sendto(query, self.upstream)
            try:
                answer, _ = upstream.recvfrom(65535)
            except TimeoutError:
                return
        self.forwarded += 1
        self._socket.sendto(answer, client)
