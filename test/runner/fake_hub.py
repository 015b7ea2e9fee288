"""A local stand-in for the Hugging Face Hub's file API, enough for snapshot_download.

Serves one repository from a folder over HTTP on 127.0.0.1: the revision and tree listings and
file downloads with ETag, Content-Length and Range support. It records every request, and can
cut one download short after half its bytes to exercise resuming.
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SHA = "0123456789abcdef0123456789abcdef01234567"


class FakeHub:
    def __init__(self, repo: str, folder: Path) -> None:
        self.repo = repo
        self.files = {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.cut_once: str | None = None  # a file whose next GET stops halfway
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_HEAD(self) -> None:
                hub._serve(self, head=True)

            def do_GET(self) -> None:
                hub._serve(self, head=False)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()

    def file_requests(self) -> list[tuple[str, str, dict[str, str]]]:
        return [r for r in self.requests if "/resolve/" in r[1]]

    def _serve(self, h: BaseHTTPRequestHandler, head: bool) -> None:
        self.requests.append((h.command, h.path, dict(h.headers)))
        api = f"/api/models/{self.repo}/"
        if h.path.startswith(api + "revision/"):
            return self._json(h, {"id": self.repo, "sha": SHA, "siblings": [{"rfilename": f} for f in self.files]})
        if h.path.startswith(api + "tree/"):
            return self._json(h, [{"type": "file", "path": f, "size": len(d), "oid": hashlib.sha1(d).hexdigest()}
                                  for f, d in self.files.items()])
        prefix = f"/{self.repo}/resolve/"
        if h.path.startswith(prefix):
            name = h.path[len(prefix):].split("/", 1)[1].split("?")[0]
            if name in self.files:
                return self._file(h, name, head)
        h.send_response(404)
        h.send_header("Content-Length", "0")
        h.end_headers()

    def _json(self, h, value) -> None:
        body = json.dumps(value).encode()
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def _file(self, h, name: str, head: bool) -> None:
        data = self.files[name]
        start = 0
        ranged = h.headers.get("Range", "")
        if ranged.startswith("bytes="):
            start = int(ranged[6:].split("-")[0])
        body = data[start:]
        h.send_response(206 if start else 200)
        h.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
        h.send_header("X-Repo-Commit", SHA)
        h.send_header("Accept-Ranges", "bytes")
        h.send_header("Content-Length", str(len(body)))
        if start:
            h.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        h.end_headers()
        if head:
            return
        if self.cut_once == name and not start:
            self.cut_once = None
            h.wfile.write(body[: len(body) // 2])
            h.wfile.flush()
            h.close_connection = True
            h.connection.shutdown(2)
            return
        h.wfile.write(body)
