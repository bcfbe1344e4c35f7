"""kazoo's Lock for the ZooKeeper bench's handoff (run with /usr/bin/python3; Debian python3-kazoo).

    kazoo-handoff.py HOSTS PATH

One Lock object on PATH, driven by one command per stdin line; one reply line per command on stdout:
  acquire          -> "contending" once the request is sent, then "acquired <t1 ns>" (time.monotonic_ns()
                      just after Lock.acquire() returned)
  release <ms>     -> sleeps <ms>, then "released <t0 ns>" (t0 taken just before Lock.release())
  exit / EOF       -> stops the client and exits
time.monotonic_ns() is CLOCK_MONOTONIC on Linux: system-wide, comparable with Node's process.hrtime.bigint().
"""
import sys
import threading
import time

from kazoo.client import KazooClient
from kazoo.recipe.lock import Lock


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main():
    hosts, path = sys.argv[1], sys.argv[2]
    zk = KazooClient(hosts=hosts, timeout=10.0)
    zk.start(timeout=15)
    lock = Lock(zk, path)
    say("ready")
    try:
        for line in sys.stdin:
            parts = line.split()
            if not parts:
                continue
            cmd = parts[0]
            if cmd == "acquire":
                # acquire() blocks: run it on a thread so "contending" goes out at once.
                def run():
                    lock.acquire(timeout=30)
                    t1 = time.monotonic_ns()
                    say("acquired %d" % t1)

                say("contending")
                threading.Thread(target=run, daemon=True).start()
            elif cmd == "release":
                time.sleep(float(parts[1]) / 1000.0)
                t0 = time.monotonic_ns()
                lock.release()
                say("released %d" % t0)
            elif cmd == "exit":
                break
    finally:
        try:
            if lock.is_acquired:
                lock.release()
        except Exception:
            pass
        zk.stop()
        zk.close()


if __name__ == "__main__":
    main()
