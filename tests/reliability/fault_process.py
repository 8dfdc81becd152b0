"""tests/synth/fault_server.py in a process of its own, with its counts in a file.

The engine's retry paths are tested in-process in tests/synth; here the server
is a separate process, as a real endpoint is, so it can be killed, restarted
and starved independently of the client. The script of behaviours comes from
the command line; every 20 ms (and at exit) the server's per-prompt request
and answer counts are written atomically to `--stats` as JSON.

    python -m tests.reliability.fault_process --stats s.json --script 429,500,ok --default ok
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
from pathlib import Path

from tests.synth.fault_server import FaultServer


def dump(server: FaultServer, path: Path) -> None:
    with server._lock:
        data = {"requests": dict(server.requests), "answered": dict(server.answered)}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stats", type=Path, required=True)
    parser.add_argument("--script", default="", help="comma-separated behaviours, in order")
    parser.add_argument("--default", default="ok")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    script = [b for b in args.script.split(",") if b]
    server = FaultServer(script, default=args.default, port=args.port).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"serving on {server.url}", flush=True)
    while not stop.wait(0.02):
        dump(server, args.stats)
    dump(server, args.stats)
    server.stop()


if __name__ == "__main__":
    main()
