"""HTTP helpers shared by the server tests: multipart bodies and requests with the standard library."""
from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)

    def image(self) -> np.ndarray:
        return np.asarray(Image.open(io.BytesIO(self.body)))

    def error(self) -> str:
        """The one-line JSON error of a 4xx/5xx answer (asserts its shape)."""
        assert self.headers.get("content-type", "").startswith("application/json"), self.headers
        msg = self.json()["error"]
        assert isinstance(msg, str) and msg and "\n" not in msg and "Traceback" not in msg, msg
        return msg


def png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def multipart(fields: dict[str, object] | None = None, files: dict[str, bytes] | None = None) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts: list[bytes] = []
    for name, value in (fields or {}).items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, data in (files or {}).items():
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}.png"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        )
        parts.append(head.encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def request(
    url: str,
    fields: dict[str, object] | None = None,
    files: dict[str, bytes] | None = None,
    *,
    body: bytes | None = None,
    content_type: str | None = None,
    method: str | None = None,
    timeout: float = 60,
) -> Reply:
    headers = {}
    if body is None and (fields is not None or files is not None):
        body, content_type = multipart(fields, files)
    if content_type:
        headers["Content-Type"] = content_type
    req = urllib.request.Request(url, data=body, headers=headers, method=method or ("POST" if body is not None else "GET"))
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return Reply(r.status, {k.lower(): v for k, v in r.headers.items()}, r.read())
    except urllib.error.HTTPError as e:
        return Reply(e.code, {k.lower(): v for k, v in e.headers.items()}, e.read())
