"""A tiny DNS server for tests: answers every A query with 127.1.2.3 (and every other
query with no records) after a delay, each answer on its own thread.
Usage: slow_dns.py ADDRESS DELAY_SECONDS   (listens on ADDRESS:53/udp; prints "ready")."""
import socket
import struct
import sys
import threading
import time

address, delay = sys.argv[1], float(sys.argv[2])
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind((address, 53))
print("ready", flush=True)


def answer(query, peer):
    time.sleep(delay)
    end = 12
    while query[end] != 0:
        end += query[end] + 1
    question = query[12:end + 5]
    qtype = struct.unpack(">H", query[end + 1:end + 3])[0]
    records = b""
    if qtype == 1:
        records = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + socket.inet_aton("127.1.2.3")
    header = query[:2] + b"\x81\x80" + struct.pack(">HHHH", 1, 1 if records else 0, 0, 0)
    sock.sendto(header + question + records, peer)


while True:
    data, peer = sock.recvfrom(512)
    threading.Thread(target=answer, args=(data, peer), daemon=True).start()
