"""The transport's floor for bench/collective-latency.ts: one TCP round trip of 256 bytes
(the size of 64 floats) between two processes over loopback, with TCP_NODELAY as Gloo sets
it, 1,000 times after 50 of warm-up. Started as: tcp_roundtrip.py server|client PORT; the
client prints the mean microseconds of one round trip."""
import socket
import sys
import time

SIZE = 256
role, port = sys.argv[1], int(sys.argv[2])


def exchange(sock, payload):
    sock.sendall(payload)
    got = 0
    while got < SIZE:
        chunk = sock.recv(SIZE - got)
        if not chunk:
            raise SystemExit("the other side closed the connection")
        got += len(chunk)


if role == "server":
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(1)
    print("ready", flush=True)
    conn, _ = listener.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        data = b""
        while len(data) < SIZE:
            chunk = conn.recv(SIZE - len(data))
            if not chunk:
                sys.exit(0)
            data += chunk
        conn.sendall(data)
else:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    payload = b"\0" * SIZE
    for _ in range(50):
        exchange(sock, payload)
    n = 1000
    start = time.perf_counter()
    for _ in range(n):
        exchange(sock, payload)
    print(f"{(time.perf_counter() - start) / n * 1e6:.1f}")
    sock.close()
