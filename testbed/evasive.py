#!/usr/bin/env python3
"""testbed/evasive.py: the testbed's evasive relay, a user-space forwarder that delays
every segment and injects chaff, as an attacker hiding a relay's timing would.

    evasive.py --plain-listen IP:PORT --tunnel-connect IP:PORT [options]   # at the relay
    evasive.py --tunnel-listen IP:PORT --plain-connect IP:PORT [options]   # at the next hop

Two instances make one tunnel. The relay's instance accepts the relayed session in the
clear (sshd's `-J` forwarding connects to it locally) and carries it to the next hop's
instance over one TCP connection, the one the vantages capture; that instance hands it to
the real destination locally. Inside the tunnel every chunk travels in a frame
(1 byte kind, 2 bytes length, payload): kind 0 is data, kind 1 is chaff, which the other
end drops. Both instances shape what they send into the tunnel:

  * delay: each data frame leaves at max(previous data frame, arrival + U(0, --delay-ms));
    order is kept, as a relay that must not corrupt the stream keeps it;
  * chaff: for each data frame, with probability --chaff (0..1, or more than one frame
    per data frame for values above 1), a chaff frame of 20..120 random bytes is sent at
    arrival + U(0, --chaff-spread) s, which fills the idle periods timing detectors read.

The tunnel's sockets use TCP_NODELAY, so one frame is one segment on the wire. Python 3
standard library only; ends when either side closes. Used by scenario.py --evasive-*.
"""
import argparse
import heapq
import os
import random
import socket
import struct
import sys
import threading
import time

DATA, CHAFF = 0, 1


def addr(s):
    host, port = s.rsplit(":", 1)
    return host, int(port)


class Shaper:
    """Sends frames into the tunnel at their scheduled times, data in order."""

    def __init__(self, sock, delay_ms, chaff, spread, rng):
        self.sock, self.delay, self.chaff, self.spread, self.rng = sock, delay_ms / 1000.0, chaff, spread, rng
        self.heap, self.seq, self.last_data = [], 0, 0.0
        self.cv = threading.Condition()
        self.closed = False

    def push(self, when, kind, payload):
        with self.cv:
            heapq.heappush(self.heap, (when, self.seq, kind, payload))
            self.seq += 1
            self.cv.notify()

    def data(self, payload):
        now = time.monotonic()
        with self.cv:
            when = max(self.last_data, now + self.rng.uniform(0, self.delay))
            self.last_data = when
        self.push(when, DATA, payload)
        n = int(self.chaff) + (1 if self.rng.random() < self.chaff - int(self.chaff) else 0)
        for _ in range(n):
            self.push(now + self.rng.uniform(0, self.spread), CHAFF, os.urandom(self.rng.randint(20, 120)))

    def close(self):
        with self.cv:
            self.closed = True
            self.cv.notify()

    def run(self):
        try:
            while True:
                with self.cv:
                    while True:
                        data_left = any(k == DATA for _, _, k, _ in self.heap)
                        if self.closed and not data_left:
                            return
                        if self.heap:
                            wait = self.heap[0][0] - time.monotonic()
                            if wait <= 0:
                                when, _, kind, payload = heapq.heappop(self.heap)
                                break
                            self.cv.wait(wait)
                        else:
                            self.cv.wait(1.0)
                self.sock.sendall(struct.pack("!BH", kind, len(payload)) + payload)
        except OSError:
            pass
        finally:
            try:
                self.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass


def plain_to_tunnel(plain, shaper):
    try:
        while True:
            chunk = plain.recv(16384)
            if not chunk:
                break
            for i in range(0, len(chunk), 65535):
                shaper.data(chunk[i:i + 65535])
    except OSError:
        pass
    shaper.close()


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        part = sock.recv(n - len(buf))
        if not part:
            return None
        buf += part
    return buf


def tunnel_to_plain(tunnel, plain):
    try:
        while True:
            head = recv_exact(tunnel, 3)
            if head is None:
                break
            kind, length = struct.unpack("!BH", head)
            payload = recv_exact(tunnel, length)
            if payload is None:
                break
            if kind == DATA:
                plain.sendall(payload)
    except OSError:
        pass
    try:
        plain.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def serve(plain, tunnel, a, seed):
    for s in (plain, tunnel):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    shaper = Shaper(tunnel, a.delay_ms, a.chaff, a.chaff_spread, random.Random(seed))
    threads = [threading.Thread(target=shaper.run, daemon=True),
               threading.Thread(target=plain_to_tunnel, args=(plain, shaper), daemon=True),
               threading.Thread(target=tunnel_to_plain, args=(tunnel, plain), daemon=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    plain.close()
    tunnel.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--plain-listen")
    ap.add_argument("--tunnel-connect")
    ap.add_argument("--tunnel-listen")
    ap.add_argument("--plain-connect")
    ap.add_argument("--delay-ms", type=float, default=0.0, help="largest added delay per segment (ms)")
    ap.add_argument("--chaff", type=float, default=0.0, help="chaff frames per data frame (0 = none, 0.5 = 50 %%)")
    ap.add_argument("--chaff-spread", type=float, default=3.0, help="chaff goes out within this many seconds")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    relay_end = bool(a.plain_listen and a.tunnel_connect)
    next_end = bool(a.tunnel_listen and a.plain_connect)
    if relay_end == next_end:
        sys.exit("evasive.py: give --plain-listen with --tunnel-connect, or --tunnel-listen with --plain-connect")
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(addr(a.plain_listen if relay_end else a.tunnel_listen))
    lsock.listen(16)
    print("listening", flush=True)
    n = 0
    while True:
        conn, _ = lsock.accept()
        n += 1
        other = socket.create_connection(addr(a.tunnel_connect if relay_end else a.plain_connect), timeout=10)
        other.settimeout(None)
        plain, tunnel = (conn, other) if relay_end else (other, conn)
        threading.Thread(target=serve, args=(plain, tunnel, a, a.seed * 1000 + n), daemon=True).start()


if __name__ == "__main__":
    main()
