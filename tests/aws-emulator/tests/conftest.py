"""Fixtures: one emulator subprocess on a free 127.0.0.1 port, seeded once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

HERE = Path(__file__).resolve().parent.parent
REGIONS = ["us-east-1", "eu-west-1"]
PER_KIND = 3
EXTERNAL_ID = "berth-test-external-id"


def start_emulator(extra_args: list[str] | None = None, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(HERE) + (os.pathsep + e["PYTHONPATH"] if e.get("PYTHONPATH") else "")
    e.pop("MOTO_ACCOUNT_ID", None)
    if env:
        e.update(env)
    proc = subprocess.Popen(
        [sys.executable, "-m", "berth_aws_emulator", "--host", "127.0.0.1", "--port", "0", *(extra_args or [])],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e, cwd=str(HERE), text=True,
    )
    deadline = time.monotonic() + 60
    line = ""
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line:
            break
        if proc.poll() is not None:
            raise RuntimeError(f"emulator exited early: {proc.stderr.read()}")
    ready = json.loads(line)
    assert ready["event"] == "ready", ready
    return proc, ready["endpoint"]


def stop_emulator(proc: subprocess.Popen, timeout: float = 15) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise


@pytest.fixture(scope="session")
def emulator():
    proc, endpoint = start_emulator()
    try:
        yield endpoint
    finally:
        code = stop_emulator(proc)
        assert code == 0, f"emulator exit code {code}"


class Admin:
    def __init__(self, endpoint: str):
        self.endpoint = endpoint

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.endpoint + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def get(self, path: str) -> Any:
        status, body = self.call("GET", path)
        assert status == 200, body
        return body

    def post(self, path: str, body: Any) -> Any:
        status, out = self.call("POST", path, body)
        assert status == 200, out
        return out

    def delete(self, path: str) -> Any:
        status, out = self.call("DELETE", path)
        assert status == 200, out
        return out


@pytest.fixture(scope="session")
def admin(emulator) -> Admin:
    return Admin(emulator)


@pytest.fixture(autouse=True)
def _clean_faults(request):
    """Every test starts and ends without faults / config overrides."""
    if "emulator" not in request.fixturenames and "admin" not in request.fixturenames:
        yield
        return
    adm = request.getfixturevalue("admin")
    adm.delete("/_berth/faults")
    adm.delete("/_berth/config")
    adm.delete("/_berth/regions")
    yield
    adm.delete("/_berth/faults")
    adm.delete("/_berth/config")
    adm.delete("/_berth/regions")


NO_RETRY = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=10, read_timeout=60)


def client(endpoint: str, service: str, region: str = "us-east-1", creds: dict[str, str] | None = None,
           config: Config = NO_RETRY, **kw: Any):
    args: dict[str, Any] = dict(region_name=region, endpoint_url=endpoint, config=config,
                                aws_access_key_id="testing", aws_secret_access_key="testing")
    if creds:
        args.update(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                    aws_session_token=creds["SessionToken"])
    args.update(kw)
    return boto3.client(service, **args)


@pytest.fixture(scope="session")
def seeded(emulator) -> dict[str, Any]:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(HERE)
    t0 = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", "berth_aws_emulator.seed", "--endpoint", emulator, "--accounts", "3",
         "--regions", ",".join(REGIONS), "--per-kind", str(PER_KIND), "--ous"],
        capture_output=True, text=True, env=e, cwd=str(HERE), timeout=300,
    )
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    summary["_wall_s"] = time.monotonic() - t0
    return summary


@pytest.fixture(scope="session")
def member_creds(emulator, seeded) -> dict[str, dict[str, str]]:
    """Credentials in each member account via its read role (with the ExternalId)."""
    sts = client(emulator, "sts")
    out = {}
    for a in seeded["accounts"]:
        out[a["id"]] = sts.assume_role(RoleArn=a["read_role_arn"], RoleSessionName="berth-test",
                                       ExternalId=a["external_id"])["Credentials"]
    return out
