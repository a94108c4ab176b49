"""What visitors may upload, and how long it stays: per-request, per-client and server-wide bounds on files and bytes,
enforced in front of Gradio's upload route while the body streams in (an upload counts against the bounds from its
first byte, so parallel uploads cannot each pass alone), and a ledger that deletes an upload as soon as the request
that used it ends (or, for an upload no request uses, after `max_age_seconds`).

Gradio stores an upload as `<upload folder>/<sha256 of its content>/<name>`, so two visitors sending the same file
share one path: the ledger counts how many uploads are waiting for each path and deletes it with the last.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

UPLOAD_ROUTE = "/gradio_api/upload"
SPOOL_MEMORY_BYTES = 1 << 20  # request bodies larger than this are spooled to disk before Gradio reads them


@dataclass(frozen=True)
class UploadLimits:
    """Bounds on uploads.

    Args:
        max_request_files: most files in one upload request.
        max_request_mb: most MiB in one upload request (the whole multipart body).
        max_client_files: most uploaded files one client may hold on the server at once.
        max_client_mb: most uploaded MiB one client may hold on the server at once (received or being received).
        max_total_mb: most uploaded MiB all clients together may hold on the server at once.
        max_age_seconds: an upload no request has used is deleted after this long.
    """

    max_request_files: int = 20
    max_request_mb: float = 200.0
    max_client_files: int = 40
    max_client_mb: float = 400.0
    max_total_mb: float = 2048.0
    max_age_seconds: float = 300.0


@dataclass
class _Held:
    client: str
    size: int
    uploaded: float


@dataclass(eq=False)
class Receiving:
    """An upload request being received: its client, and the files and bytes that have arrived so far."""

    client: str
    files: int = 0
    size: int = 0


class UploadLedger:
    """The uploads held on the server, by path and by client; thread-safe.

    Args:
        limits: the per-client bounds (`max_client_files`, `max_client_mb`) and `max_age_seconds`.
        on_delete: called with each path deleted (the app drops it from Gradio's set of served uploads).
        clock: seconds, monotonic.
    """

    def __init__(
        self,
        limits: UploadLimits,
        on_delete: Callable[[str], None] = lambda path: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = limits
        self.on_delete = on_delete
        self.clock = clock
        self._held: dict[str, list[_Held]] = defaultdict(list)  # path -> one entry per upload of it, oldest first
        self._receiving: list[Receiving] = []
        self._lock = threading.Lock()

    def held_by(self, client: str | None) -> tuple[int, int]:
        """`(files, bytes)` that `client` (None: every client) holds on the server now, uploads being received
        included."""
        with self._lock:
            held = [entry for entries in self._held.values() for entry in entries if client in (None, entry.client)]
            receiving = [upload for upload in self._receiving if client in (None, upload.client)]
        return (len(held) + sum(upload.files for upload in receiving),
                sum(entry.size for entry in held) + sum(upload.size for upload in receiving))

    @contextmanager
    def receiving(self, client: str) -> Iterator[Receiving]:
        """An upload request from `client` being received: the caller updates its `files` and `size` as the body
        streams in, and they count against the bounds (`held_by`, `refusal`) until the block ends."""
        upload = Receiving(client)
        with self._lock:
            self._receiving.append(upload)
        try:
            yield upload
        finally:
            with self._lock:
                self._receiving.remove(upload)

    def refusal(self, client: str, files: int = 0, size: int = 0) -> tuple[int, str] | None:
        """Why `client` may not hold `files` more files of `size` more bytes (besides what `held_by` counts): an
        HTTP status (429 for the client's bounds, 503 for the server's) and one line; None when it may."""
        self.expire()
        held_files, held_bytes = self.held_by(client)
        if held_files + files > self.limits.max_client_files:
            return 429, (f"too many uploads waiting: at most {self.limits.max_client_files} files per visitor at a "
                         "time; check the files already sent, or wait a few minutes")
        if held_bytes + size > self.limits.max_client_mb * 2**20:
            return 429, (f"too much uploaded audio waiting: at most {self.limits.max_client_mb:g} MiB per visitor at "
                         "a time; check the files already sent, or wait a few minutes")
        if self.held_by(None)[1] + size > self.limits.max_total_mb * 2**20:
            return 503, "the server holds too many uploads right now; try again in a few minutes"
        return None

    def record(self, client: str, paths: Iterable[str]) -> None:
        """`client` has just uploaded `paths`."""
        now = self.clock()
        with self._lock:
            for path in paths:
                size = os.stat(path).st_size if os.path.isfile(path) else 0
                self._held[os.fspath(path)].append(_Held(client, size, now))

    def release(self, paths: Iterable[str | os.PathLike | None]) -> None:
        """A request that used `paths` has ended: one upload of each is done with, and a path no other upload waits
        for is deleted. Paths the ledger does not hold (examples, outputs) are left alone."""
        with self._lock:
            done = [self._pop(os.fspath(path)) for path in paths if path]
        self._delete(path for path in done if path)

    def release_stream_chunk(self, path: str | os.PathLike) -> None:
        """A streamed chunk reached the app: release it and the earlier chunks of its stream (the same client's
        uploads of the same file name), which Gradio replaced by this one when they came faster than the app ran."""
        path = os.fspath(path)
        with self._lock:
            entries = self._held.get(path)
            if not entries:
                return
            client, uploaded, name = entries[0].client, entries[0].uploaded, os.path.basename(path)
            earlier = [other for other, others in self._held.items() if os.path.basename(other) == name
                       and any(entry.client == client and entry.uploaded <= uploaded for entry in others)]
            done = [self._pop(other) for other in earlier]
        self._delete(other for other in done if other)

    def expire(self) -> None:
        """Release every upload older than `max_age_seconds` that no request has used."""
        cutoff = self.clock() - self.limits.max_age_seconds
        with self._lock:
            stale = [path for path, entries in self._held.items() if entries[0].uploaded < cutoff]
            done = [self._pop(path) for path in stale for _ in range(len(self._held[path]))]
        self._delete(path for path in done if path)

    def _pop(self, path: str) -> str | None:
        """Drop the oldest upload of `path`; return `path` when none is left (the caller deletes it)."""
        entries = self._held.get(path)
        if not entries:
            return None
        entries.pop(0)
        if entries:
            return None
        del self._held[path]
        return path

    def _delete(self, paths: Iterable[str]) -> None:
        for path in paths:
            Path(path).unlink(missing_ok=True)
            try:
                Path(path).parent.rmdir()  # Gradio's per-content folder, when nothing else is in it
            except OSError:
                pass
            self.on_delete(path)


def client_address(scope: dict, trust_proxy: bool) -> str:
    """Who sent a request: the last `X-Forwarded-For` address (the one the proxy in front of the app saw) when
    `trust_proxy`, else the socket's peer."""
    if trust_proxy:
        for name, value in scope.get("headers", ()):
            if name == b"x-forwarded-for" and value.strip():
                return value.decode("latin-1").split(",")[-1].strip()
    client = scope.get("client")
    return client[0] if client else "unknown"


class UploadGuard:
    """ASGI middleware in front of Gradio's upload route: refuses a request whose `Content-Length` is over the
    per-request, per-client or server-wide bounds before reading it, else reads the body (to `spool_dir` past
    `SPOOL_MEMORY_BYTES`), counting its bytes and files against the bounds as they arrive and refusing (413, 429,
    503, one-line message) the moment one is passed, and hands a complete body to Gradio, recording the paths Gradio
    answers with in the ledger."""

    def __init__(self, app, ledger: UploadLedger, trust_proxy: bool = False, spool_dir: str | None = None) -> None:
        self.app = app
        self.ledger = ledger
        self.trust_proxy = trust_proxy
        self.spool_dir = spool_dir

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].endswith(UPLOAD_ROUTE):
            await self.app(scope, receive, send)
            return
        limits = self.ledger.limits
        max_bytes = int(limits.max_request_mb * 2**20)
        too_large = f"upload too large: at most {limits.max_request_mb:g} MiB per request"
        headers = dict(scope.get("headers", ()))
        client = client_address(scope, self.trust_proxy)
        declared = headers.get(b"content-length", b"").strip()
        if declared.isdigit():
            refusal = (413, too_large) if int(declared) > max_bytes else self.ledger.refusal(client, 0, int(declared))
            if refusal:
                await _refuse(send, *refusal)
                return
        boundary = _boundary(headers.get(b"content-type", b""))
        with self.ledger.receiving(client) as upload, \
                tempfile.SpooledTemporaryFile(SPOOL_MEMORY_BYTES, dir=self.spool_dir) as body:
            marker, tail = b"--" + boundary + b"\r\n", b""
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunk = message.get("body", b"")
                upload.size += len(chunk)
                window = tail + chunk
                upload.files += window.count(marker) if boundary else 0
                tail = window[-(len(marker) - 1):] if boundary else b""
                if upload.size > max_bytes:
                    refusal = 413, too_large
                elif upload.files > limits.max_request_files:
                    refusal = 413, f"too many files: at most {limits.max_request_files} per request"
                else:
                    refusal = self.ledger.refusal(client)
                if refusal:
                    await _refuse(send, *refusal)
                    return
                body.write(chunk)
                if not message.get("more_body", False):
                    break
            body.seek(0)
            answer = await self._forward(scope, body, receive, send)
        if answer is not None:  # no await since the block ended: no other request sees these bytes uncounted
            self.ledger.record(client, answer)

    async def _forward(self, scope, body, receive, send) -> list[str] | None:
        """Hand the spooled body to Gradio; the uploaded paths when it answers 200 with a JSON list of them."""
        sent_body = False
        status, answer = [0], bytearray()

        async def replay():
            nonlocal sent_body
            if sent_body:
                return await receive()  # after the body: the client's own disconnect
            chunk = body.read(SPOOL_MEMORY_BYTES)
            more = len(chunk) == SPOOL_MEMORY_BYTES
            sent_body = not more
            return {"type": "http.request", "body": chunk, "more_body": more}

        async def capture(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            elif message["type"] == "http.response.body" and status[0] == 200:
                answer.extend(message.get("body", b""))
            await send(message)

        await self.app(scope, replay, capture)
        if status[0] != 200:
            return None
        try:
            paths = json.loads(bytes(answer))
        except ValueError:
            return None
        return [path for path in paths if isinstance(path, str)] if isinstance(paths, list) else None


def _boundary(content_type: bytes) -> bytes:
    for option in content_type.split(b";")[1:]:
        name, _, value = option.strip().partition(b"=")
        if name.lower() == b"boundary":
            return value.strip(b'"')
    return b""


async def _refuse(send, status: int, message: str) -> None:
    logger.info("upload refused (%d): %s", status, message)
    body = message.encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
