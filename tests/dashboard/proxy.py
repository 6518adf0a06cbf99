"""A switchable TCP forwarder on a loopback port, to take "the broker" away and bring it back.

Only the bootstrap connection goes through it (the broker advertises its own address), which
is enough: a client that cannot bootstrap cannot reach the cluster at all.
"""

from __future__ import annotations

import socket
import threading
from contextlib import suppress

from deploy.localkafka.net import free_ports


class Proxy:
    """Forwards ``127.0.0.1:port`` to ``target`` while up; refuses connections while down."""

    def __init__(self, target: str) -> None:
        host, _, port = target.rpartition(":")
        self.target = (host, int(port))
        # Not an ephemeral port: while the proxy is down, a client's connection to one can be
        # given that very port as its source and connect to itself, a "broker" that never answers.
        [self.port] = free_ports(1)
        self._server: socket.socket | None = None
        self._links: list[socket.socket] = []

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def up(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(16)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def down(self) -> None:
        """Stop listening and cut every forwarded connection."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for link in self._links:
            with suppress(OSError):
                link.shutdown(socket.SHUT_RDWR)
            link.close()
        self._links.clear()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            self._links += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with suppress(OSError):
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        with suppress(OSError):
            sink.shutdown(socket.SHUT_WR)
