"""A TCP proxy in front of Redis that delivers every Celery message twice.

Clients (the test process, workers, beat) talk to Redis through it. Each LPUSH (how kombu
puts a message on a queue) is rewritten to push every value twice; the copy gets a delivery
tag of its own, as a message redelivered by the broker has. Everything else, and every
reply, passes through unchanged."""

import json
import socket
import threading
import uuid


def _command(buffer: bytearray) -> tuple[list[bytes] | None, int] | None:
    """The first RESP command in buffer (an array of bulk strings; None for an inline
    command) and its length, or None while it is incomplete."""
    if not buffer.startswith(b"*"):
        end = buffer.find(b"\r\n")
        return None if end < 0 else (None, end + 2)
    end = buffer.find(b"\r\n")
    if end < 0:
        return None
    count, position, args = int(buffer[1:end]), end + 2, []
    for _ in range(count):
        end = buffer.find(b"\r\n", position)
        if end < 0:
            return None
        length = int(buffer[position + 1 : end])
        start = end + 2
        if len(buffer) < start + length + 2:
            return None
        args.append(bytes(buffer[start : start + length]))
        position = start + length + 2
    return args, position


def _encode(args: list[bytes]) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def _redelivered(payload: bytes) -> bytes:
    try:
        message = json.loads(payload)
        message["properties"]["delivery_tag"] = str(uuid.uuid4())
    except (ValueError, KeyError, TypeError):
        return payload
    return json.dumps(message).encode()


class DuplicatingProxy:
    def __init__(self, *, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.duplicated = 0
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        threading.Thread(target=self._accept, daemon=True).start()

    def stop(self) -> None:
        self.listener.close()
        with self._lock:
            for sock in self._sockets:
                sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            threading.Thread(target=self._requests, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._replies, args=(upstream, client), daemon=True).start()

    def _requests(self, client: socket.socket, upstream: socket.socket) -> None:
        buffer = bytearray()
        try:
            while data := client.recv(65536):
                buffer += data
                out = bytearray()
                while parsed := _command(buffer):
                    args, length = parsed
                    out += buffer[:length] if args is None else self._rewrite(args)
                    del buffer[:length]
                upstream.sendall(out)
        except OSError:
            pass
        finally:
            client.close()
            upstream.close()

    def _rewrite(self, args: list[bytes]) -> bytes:
        if len(args) >= 3 and args[0].upper() == b"LPUSH":
            values = [copy for value in args[2:] for copy in (value, _redelivered(value))]
            with self._lock:
                self.duplicated += len(args) - 2
            args = [args[0], args[1], *values]
        return _encode(args)

    def _replies(self, upstream: socket.socket, client: socket.socket) -> None:
        try:
            while data := upstream.recv(65536):
                client.sendall(data)
        except OSError:
            pass
        finally:
            client.close()
            upstream.close()
