"""A real S3-compatible server for tests: moto's server mode, on a free local port.

moto speaks the S3 REST API over HTTP (boto3 talks to it exactly as to AWS or MinIO). It
accepts any credentials and does not enforce presigned links' expiry: tests check the
expiry a link carries, and that the link downloads.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from shared.config import Settings
from shared.redis_server import free_port

ACCESS_KEY = "AKIATESTSTEMBOT00001"
SECRET_KEY = "test-secret-key-must-never-be-logged"
REGION = "eu-west-1"


@contextlib.contextmanager
def s3_server() -> Iterator[str]:
    """Run moto's S3 server; yields its endpoint URL."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def client(endpoint: str) -> Any:
    return boto3.session.Session(
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name=REGION
    ).client("s3", endpoint_url=endpoint)


def new_bucket(endpoint: str) -> str:
    name = f"stems-{uuid.uuid4().hex[:12]}"
    client(endpoint).create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    return name


def s3_settings(endpoint: str, bucket: str, storage_dir: Path, **overrides: object) -> Settings:
    """Settings for the S3 backend on ``endpoint`` (as an operator would set them)."""
    values: dict[str, object] = {
        "storage_backend": "s3",
        "s3_bucket": bucket,
        "s3_endpoint_url": endpoint,
        "s3_region": REGION,
        "s3_access_key_id": ACCESS_KEY,
        "s3_secret_access_key": SECRET_KEY,
        "storage_dir": storage_dir,
        "signing_key": "test-signing-key-not-a-secret",
        **overrides,
    }
    return Settings(**values)


def object_names(endpoint: str, bucket: str, prefix: str) -> list[str]:
    """Keys under ``prefix``, without it, sorted."""
    reply = client(endpoint).list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(item["Key"][len(prefix) :] for item in reply.get("Contents", []))


def read_object(endpoint: str, bucket: str, key: str) -> bytes:
    body: bytes = client(endpoint).get_object(Bucket=bucket, Key=key)["Body"].read()
    return body
