"""A fault-injecting TCP proxy for tests: one Link forwards a listening port
to a target and can delay, stall, cut and heal what flows through it, at
once or on a schedule. The kernel here has no netem, and the cluster tests
(issue 12) need partitions between named nodes over real TCP; this is that,
in the test harness's own Python (standard library only).

    link = Link("n1->n2", target=("127.0.0.1", 2380)).start()
    ... connect to ("127.0.0.1", link.port) instead of the target ...
    link.delay(0.2)        # every chunk waits 200 ms each way
    link.blackhole()       # bytes are taken and never delivered (a lost route)
    link.cut()             # open connections reset, new ones refused
    link.heal()            # back to normal
    link.run_schedule([(1.0, "cut"), (3.0, "heal")])  # seconds from now

What a fault means for TCP: dropping single segments is the kernel's to
retransmit, so the faults are what a client can observe: latency, a
connection that stays open but carries nothing (blackhole), and a
connection that is reset or refused (cut).
"""
import socket
import struct
import threading
import time

_CHUNK = 64 * 1024


class Link:
    def __init__(self, name, target, listen=("127.0.0.1", 0)):
        self.name = name
        self.target = target
        self._listen_addr = listen
        self._lock = threading.Lock()
        self._delay = 0.0
        self._mode = "up"  # up, blackhole, cut
        self._conns = set()  # open socket pairs, to reset on a cut
        self._stop = threading.Event()
        self.port = None
        self.accepted = 0

    # --- control --------------------------------------------------------

    def delay(self, seconds):
        with self._lock:
            self._delay = float(seconds)

    def blackhole(self):
        with self._lock:
            self._mode = "blackhole"

    def cut(self):
        with self._lock:
            self._mode = "cut"
            conns, self._conns = self._conns, set()
        for pair in conns:
            for s in pair:
                _reset(s)

    def heal(self):
        with self._lock:
            self._mode = "up"
            self._delay = 0.0

    def run_schedule(self, steps):
        """steps: [(seconds from now, "cut" | "heal" | "blackhole" | ("delay", s))]."""
        start = time.monotonic()

        def run():
            for at, action in sorted(steps, key=lambda s: s[0]):
                if self._stop.wait(max(0.0, start + at - time.monotonic())):
                    return
                if isinstance(action, tuple):
                    getattr(self, action[0])(*action[1:])
                else:
                    getattr(self, action)()

        t = threading.Thread(target=run, daemon=True, name=self.name + " schedule")
        t.start()
        return t

    # --- plumbing -------------------------------------------------------

    def start(self):
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(self._listen_addr)
        self._server.listen(64)
        self._server.settimeout(0.2)
        self.port = self._server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True, name=self.name + " accept").start()
        return self

    def stop(self):
        self._stop.set()
        self.cut()
        self._server.close()

    def _accept(self):
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self._lock:
                mode = self._mode
            if mode == "cut":
                _reset(client)  # refused, as a route that is down would be
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _reset(client)
                continue
            pair = (client, upstream)
            with self._lock:
                self._conns.add(pair)
                self.accepted += 1
            for src, dst in (pair, pair[::-1]):
                threading.Thread(target=self._pump, args=(pair, src, dst), daemon=True,
                                 name=self.name + " pump").start()

    def _pump(self, pair, src, dst):
        try:
            while not self._stop.is_set():
                data = src.recv(_CHUNK)
                if not data:
                    break
                with self._lock:
                    delay, mode = self._delay, self._mode
                if mode == "cut":
                    break
                if mode == "blackhole":
                    continue  # taken, never delivered
                if delay:
                    time.sleep(delay)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._conns.discard(pair)
            for s in pair:
                _close(s)


def _reset(s):
    """Closes with a RST (SO_LINGER 0), as a dead peer or route would."""
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    _close(s)


def _close(s):
    # shutdown(SHUT_RD) first: a thread blocked in recv on it wakes (close
    # alone would leave it blocked); it sends nothing, so a linger-0 close
    # still resets.
    try:
        s.shutdown(socket.SHUT_RD)
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass
