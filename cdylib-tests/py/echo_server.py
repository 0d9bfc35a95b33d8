#!/usr/bin/env python3
"""A thread-per-connection echo server written the ordinary way with socketserver.

Usage: echo_server.py PORT   (PORT 0 = ephemeral)

Listens on 127.0.0.1:PORT, prints `listening on <port>` once listening, and serves until
killed: every connection gets its own thread (ThreadingTCPServer) that echoes what it reads
until EOF.
"""

import socket
import socketserver
import sys


class EchoHandler(socketserver.BaseRequestHandler):
    def handle(self):
        sock = self.request
        while True:
            try:
                data = sock.recv(65536)
            except ConnectionError:
                return
            if not data:
                return
            try:
                sock.sendall(data)
            except ConnectionError:
                return


class EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    # Thousands of clients connect at once: a listen backlog of socketserver's default 5
    # would drop their SYNs.
    request_queue_size = socket.SOMAXCONN


def main():
    if len(sys.argv) != 2:
        print(f"usage: {sys.argv[0]} PORT", file=sys.stderr)
        return 2
    port = int(sys.argv[1])
    with EchoServer(("127.0.0.1", port), EchoHandler) as server:
        print(f"listening on {server.server_address[1]}", flush=True)
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
