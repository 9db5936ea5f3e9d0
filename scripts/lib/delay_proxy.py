#!/usr/bin/python3
"""A TCP proxy that makes a link slow and counts its round trips (standard library only).

  delay_proxy.py --listen PORT --target HOST:PORT [--rtt MS] [--stats FILE]

Every chunk of bytes is held for RTT/2 milliseconds in each direction, in order, so each
exchange where one side waits for the other's answer costs one RTT, as on a real network
(TCP's own handshake is not delayed: the benchmark counts the client's waits, not the
kernel's). --rtt 0 forwards at once.

With --stats, each connection appends "open" to FILE when it is accepted and "turns N" when
it ends, where N is the number of times the client sent again after an answer of the server had
been delivered to it, i.e. the round trips the client waited for and went on from. An answer
counts once delivered, not once the server sent it: a client that sends two messages back to
back without waiting (TLS 1.3's Finished, then the startup message) may see the server answer the
first before it sends the second, and that is no wait. With an RTT, such a race would need the
client to pause for a whole RTT between its two sends, and sends within half an RTT of a counted
one are the same wait (see Turns), so counts do not depend on the machine's load; tests count
through an RTT for that reason. The last answer of a session (TLS's close_notify, which the client
does not wait for) is not a round trip, nor is the TCP handshake. The proxy prints "listening
PORT" on stdout once it accepts connections (PORT 0 picks a free one).

scripts/bench.sh uses it for its latency scenario; tests/common/counting_proxy.rs for the round-trip
budgets of tests/round_trips.rs.
"""

import argparse
import heapq
import socket
import sys
import threading
import time


class Turns:
    """Who spoke last on one connection (the server once its answer reached the client), and
    how many answers the client waited for.

    Two real waits are at least one RTT apart: the answer to what the client sent at a wait
    reaches it one RTT later at the earliest. So a send within half an RTT of the last counted
    one is the same wait: the client answering two answers of requests it had pipelined, which
    the server flushed separately. Without that, the count would depend on how the answers
    happened to be split into packets."""

    def __init__(self, rtt_s):
        self.lock = threading.Lock()
        self.last = None
        self.count = 0
        self.same_wait_s = rtt_s / 2
        self.counted_at = None

    def client_sent(self):
        with self.lock:
            now = time.monotonic()
            if self.last == "server" and (
                self.counted_at is None or now - self.counted_at >= self.same_wait_s
            ):
                self.count += 1
                self.counted_at = now
            self.last = "client"

    def server_answered(self):
        with self.lock:
            self.last = "server"


def pump(src, dst, delay, read, delivered, done):
    """Forwards src to dst, each chunk RTT/2 after it was read, calling read() as a chunk comes
    in and delivered() once it has gone out. A reader thread takes the chunks off the socket as
    they come (so later chunks are not held behind earlier ones' delays) and this thread writes
    them when due."""
    queue = []
    cond = threading.Condition()
    closed = []

    def reader():
        n = 0
        while True:
            try:
                data = src.recv(1 << 16)
            except OSError:
                data = b""
            if data:
                read()
            with cond:
                if not data:
                    closed.append(True)
                else:
                    heapq.heappush(queue, (time.monotonic() + delay, n, data))
                    n += 1
                cond.notify()
            if not data:
                return

    threading.Thread(target=reader, daemon=True).start()
    try:
        while True:
            with cond:
                while not queue and not closed:
                    cond.wait()
                if not queue:
                    break
                due, _, data = queue[0]
                wait = due - time.monotonic()
                if wait > 0:
                    cond.wait(wait)
                    continue
                heapq.heappop(queue)
            # Before the send: the client may answer before sendall returns.
            delivered()
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        done()


def serve(client, target, delay, stats):
    try:
        server = socket.create_connection(target)
    except OSError:
        client.close()
        return
    for s in (client, server):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if stats:
        with open(stats, "a", encoding="ascii") as f:
            f.write("open\n")
    turns = Turns(2 * delay)
    remaining = [2]
    lock = threading.Lock()

    def done():
        with lock:
            remaining[0] -= 1
            last = remaining[0] == 0
        if last:
            client.close()
            server.close()
            if stats:
                with open(stats, "a", encoding="ascii") as f:
                    f.write(f"turns {turns.count}\n")

    def nothing():
        pass

    threading.Thread(target=pump,
                     args=(client, server, delay, turns.client_sent, nothing, done),
                     daemon=True).start()
    threading.Thread(target=pump,
                     args=(server, client, delay, nothing, turns.server_answered, done),
                     daemon=True).start()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", type=int, required=True)
    parser.add_argument("--target", required=True, help="HOST:PORT")
    parser.add_argument("--rtt", type=float, default=0.0, help="milliseconds per round trip")
    parser.add_argument("--stats", help="append 'turns N' per connection to this file")
    args = parser.parse_args()
    host, _, port = args.target.rpartition(":")
    target = (host, int(port))
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", args.listen))
    listener.listen(64)
    print(f"listening {listener.getsockname()[1]}", flush=True)
    delay = args.rtt / 2000.0
    while True:
        client, _ = listener.accept()
        threading.Thread(target=serve, args=(client, target, delay, args.stats),
                         daemon=True).start()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
