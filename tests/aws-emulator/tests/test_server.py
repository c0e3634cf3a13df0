"""Process behaviour: ready line, clean SIGTERM exit, loopback only, reset, the run script."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from conftest import HERE, Admin, client, start_emulator, stop_emulator


def test_ready_line_sigterm_and_reset():
    proc, endpoint = start_emulator()
    try:
        assert endpoint.startswith("http://127.0.0.1:")
        s3 = client(endpoint, "s3")
        s3.create_bucket(Bucket="reset-me")
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["reset-me"]
        adm = Admin(endpoint)
        adm.post("/_berth/faults", {"rules": [{"throttle": 1.0}]})
        assert adm.post("/_berth/reset", {}) == {"reset": True}
        assert s3.list_buckets()["Buckets"] == []
        assert adm.get("/_berth/faults")["rules"] == []
    finally:
        t0 = time.monotonic()
        assert stop_emulator(proc) == 0
        assert time.monotonic() - t0 < 5
    out = proc.stdout.read()
    assert json.loads(out.strip().splitlines()[-1]) == {"event": "stopped"}


def test_sigterm_while_serving_requests():
    # The signal can land while the server's loop is inside a request
    # handler; it must still end the process. Under load that is most signals.
    import http.client
    import threading
    import urllib.request

    for _ in range(8):
        proc, endpoint = start_emulator()
        done = threading.Event()

        def hammer() -> None:
            while not done.is_set():
                try:
                    urllib.request.urlopen(endpoint + "/_berth/stats", timeout=2).read()
                # A response cut off by the stop is expected.
                except (OSError, http.client.HTTPException):
                    pass

        threads = [threading.Thread(target=hammer, daemon=True) for _ in range(8)]
        for t in threads:
            t.start()
        try:
            time.sleep(0.2)
            assert stop_emulator(proc, timeout=10) == 0
        finally:
            done.set()
            for t in threads:
                t.join()


def test_refuses_non_loopback_host():
    env = dict(os.environ, PYTHONPATH=str(HERE))
    r = subprocess.run([sys.executable, "-m", "berth_aws_emulator", "--host", "0.0.0.0", "--port", "0"],
                       capture_output=True, text=True, env=env, cwd=str(HERE), timeout=60)
    assert r.returncode == 2 and "non-loopback" in r.stderr


def test_run_script():
    proc = subprocess.Popen([str(HERE / "run"), "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = json.loads(proc.stdout.readline())
        assert ready["event"] == "ready"
        assert client(ready["endpoint"], "sts").get_caller_identity()["Account"] == "123456789012"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
