"""Real servers on 127.0.0.1 for the remote-data tests: moto's S3 server and Python's
``http.server``, each in a subprocess, stopped when the test module is done.

A uniquely named module (not ``conftest``), shared by the core's remote-data tests and the
training tests that read from S3 (which run in the plugins' sessions).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

#: Credentials moto accepts (it checks none unless told to).
ACCESS_KEY, SECRET_KEY = "testing-key", "testing-secret"
START_LIMIT_S = 60


def free_port() -> int:
    """A port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_LIMIT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server for {url} exited with {process.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"no server answered at {url} within {START_LIMIT_S} s")


@contextmanager
def _server(
    command: list[str], url: str, env: dict[str, str] | None = None, probe: str = ""
) -> Iterator[str]:
    process = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    try:
        _wait_until_up(url + probe, process)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def moto_server(**env: str) -> Iterator[str]:
    """moto's S3 server (``python -m moto.server``) on a free port; yields its endpoint URL.

    Readiness is probed on moto's own API, which is no AWS action: with
    ``INITIAL_NO_AUTH_ACTION_COUNT`` set, the first actions are the caller's.
    """
    port = free_port()
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    with _server(command, f"http://127.0.0.1:{port}", env, "/moto-api/") as endpoint:
        yield endpoint


@contextmanager
def http_server(folder: Path) -> Iterator[str]:
    """``python -m http.server`` serving ``folder`` on a free port; yields its base URL."""
    port = free_port()
    command = [sys.executable, "-m", "http.server", "-b", "127.0.0.1", "-d", str(folder)]
    with _server([*command, str(port)], f"http://127.0.0.1:{port}") as url:
        yield url


def s3_environment(endpoint: str) -> dict[str, str]:
    """The standard AWS variables that point clients at ``endpoint`` with moto's keys."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def s3_options(endpoint: str) -> dict[str, Any]:
    """The same as storage_options: endpoint and keys given per dataset."""
    return {"endpoint_url": endpoint, "key": ACCESS_KEY, "secret": SECRET_KEY}


def upload(
    endpoint: str, folder: Path, bucket: str, key: str, options: dict[str, Any] | None = None
) -> str:
    """Copy the local ``folder`` to ``s3://bucket/key`` (creating the bucket) with
    ``options`` (default: :func:`s3_options`); its URL."""
    import s3fs

    fs = s3fs.S3FileSystem(skip_instance_cache=True, **(options or s3_options(endpoint)))
    if not fs.exists(bucket):
        fs.mkdir(bucket)
    fs.put(str(folder), f"{bucket}/{key}", recursive=True)
    return f"s3://{bucket}/{key}"


def authorized_user(endpoint: str) -> dict[str, str]:
    """On a moto server started with ``INITIAL_NO_AUTH_ACTION_COUNT=3`` (moto then checks
    keys, signatures and IAM policies): a user allowed everything on S3, made with the three
    unchecked actions; its storage options (endpoint and keys)."""
    import boto3

    iam = boto3.client(
        "iam",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )
    iam.create_user(UserName="reader")
    allow = {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}
    policy = json.dumps({"Version": "2012-10-17", "Statement": [allow]})
    iam.put_user_policy(UserName="reader", PolicyName="s3", PolicyDocument=policy)
    key = iam.create_access_key(UserName="reader")["AccessKey"]
    return {"endpoint_url": endpoint, "key": key["AccessKeyId"], "secret": key["SecretAccessKey"]}
