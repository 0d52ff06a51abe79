"""Replays a file of back-to-back NetFlow v9 export datagrams (as written by
gen-inputs, with a .lengths side file) over UDP to a collector on loopback, paced so
the collector keeps up. Only ever sends to 127.0.0.1."""
import socket
import sys
import time


def main(path, port):
    with open(path + ".lengths") as f:
        lengths = [int(x) for x in f.read().split()]
    data = open(path, "rb").read()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    pos = 0
    for i, n in enumerate(lengths):
        s.sendto(data[pos:pos + n], ("127.0.0.1", int(port)))
        pos += n
        if i % 200 == 199:
            time.sleep(0.002)  # pace: loopback drops when the receiver falls behind
    print(len(lengths))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
