"""Child processes on loopback: a free port, a child that dies with its parent, a stop."""

import ctypes
import signal
import socket
import subprocess


def free_port() -> int:
    """A port free for both TCP and UDP on 127.0.0.1 (BIND listens on both)."""
    while True:
        with socket.socket() as tcp, socket.socket(type=socket.SOCK_DGRAM) as udp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            try:
                udp.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


def die_with_parent() -> None:
    # If the parent is killed outright, the kernel ends the child too (PR_SET_PDEATHSIG).
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


def stop_child(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL if the child has not ended within 10 s."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
