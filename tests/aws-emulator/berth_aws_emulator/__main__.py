"""python -m berth_aws_emulator --host 127.0.0.1 --port PORT

Starts moto + the Cloud Control shim on one port. Prints one JSON line
{"event": "ready", "endpoint": "http://127.0.0.1:PORT", ...} on stdout when
it accepts connections (use --port 0 for a free port), and exits 0 on
SIGTERM / SIGINT.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="berth_aws_emulator", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=5000, help="port (default 5000; 0 = pick a free one)")
    p.add_argument("--log-requests", action="store_true", help="log every request to stderr")
    p.add_argument("--ready-file", help="also write the endpoint URL to this file once ready")
    args = p.parse_args(argv)
    from .server import main_serve

    try:
        return main_serve(args.host, args.port, log_requests=args.log_requests, ready_file=args.ready_file)
    except ValueError as e:
        print(f"berth_aws_emulator: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
