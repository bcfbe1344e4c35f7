"""redis-py's Lock for the Redis bench's handoff (run with /usr/bin/python3; Debian python3-redis).

    redis-py-handoff.py URL NAME TTL_S

One lock on NAME, created the way users create it -- Redis.from_url(URL).lock(NAME, timeout=TTL_S,
blocking_timeout=60) -- so every other setting is redis-py's default: sleep=0.1 s between SET NX PX
attempts, thread_local tokens, the client's default connection pool. Source of the loop timed here:
/usr/lib/python3/dist-packages/redis/lock.py (Lock.acquire: do_acquire() = SET NX PX, then
time.sleep(sleep), until it succeeds).

Driven by one command per stdin line; one reply line per event on stdout:
  acquire          -> "contending" just before Lock.acquire() is called, "blocked" after its first
                      SET NX PX attempt fails (only when it fails), then "acquired <t1 ns>"
                      (time.monotonic_ns() just after Lock.acquire() returned)
  release <ms>     -> sleeps <ms>, then "released <t0 ns>" (t0 taken just before Lock.release())
  exit / EOF       -> releases if held, closes the client and exits
time.monotonic_ns() is CLOCK_MONOTONIC on Linux: system-wide, comparable between processes.

Everything runs on the main thread: the driver sends nothing to a waiter while its acquire() blocks,
and the default thread_local token means release() must come from the thread that acquired.
"""
import sys
import time

import redis
from redis.lock import Lock


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class ReportingLock(Lock):
    """redis-py's Lock, unchanged, except that the first failed attempt of an acquire() says "blocked".

    Lock.acquire() calls do_acquire(token) once per attempt and sleeps `sleep` after each failure;
    wrapping do_acquire is the only hook, and it adds one stdout write before the first sleep only
    (never on the path of the attempt that succeeds), so the timing the driver sees is redis-py's.
    """

    report_blocked = False

    def do_acquire(self, token):
        got = super().do_acquire(token)
        if not got and self.report_blocked:
            self.report_blocked = False
            say("blocked")
        return got


def main():
    url, name, ttl_s = sys.argv[1], sys.argv[2], float(sys.argv[3])
    client = redis.Redis.from_url(url)
    client.ping()  # connect now, not inside the first timed acquire
    lock = client.lock(name, timeout=ttl_s, blocking_timeout=60, lock_class=ReportingLock)
    say("ready")
    try:
        while True:
            line = sys.stdin.readline()
            if not line:
                break
            parts = line.split()
            if not parts:
                continue
            cmd = parts[0]
            if cmd == "acquire":
                lock.report_blocked = True
                say("contending")
                if not lock.acquire():
                    say("timeout")
                    continue
                t1 = time.monotonic_ns()
                lock.report_blocked = False
                say("acquired %d" % t1)
            elif cmd == "release":
                time.sleep(float(parts[1]) / 1000.0)
                t0 = time.monotonic_ns()
                lock.release()
                say("released %d" % t0)
            elif cmd == "exit":
                break
    finally:
        try:
            if lock.owned():
                lock.release()
        except Exception:
            pass
        client.close()


if __name__ == "__main__":
    main()
