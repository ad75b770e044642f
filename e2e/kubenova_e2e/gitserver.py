"""A Git repository served over HTTP on 127.0.0.1, the way a Git host serves it to Flux:
git's own smart-HTTP server (`git http-backend`, a CGI program) behind a small
threaded Python HTTP server. Read-only over HTTP; the test commits into a working
clone and pushes it to the bare repository by path.

    with GitServer(workdir) as server:
        repo = server.repository("platform")
        repo.write({"tenants/acme.yaml": "..."})
        repo.commit("add acme")      # -> the commit's SHA
        repo.url                     # http://127.0.0.1:<port>/platform.git
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Kubenova e2e",
    "GIT_AUTHOR_EMAIL": "e2e@kubenova.invalid",
    "GIT_COMMITTER_NAME": "Kubenova e2e",
    "GIT_COMMITTER_EMAIL": "e2e@kubenova.invalid",
}


class GitServerError(RuntimeError):
    """git failed; the message carries its output."""


def git(*args: str, cwd: Path) -> str:
    env = {**os.environ, **GIT_IDENTITY, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(cwd)}
    result = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    if result.returncode != 0:
        raise GitServerError(f"git {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout.strip()


def http_backend() -> str:
    """The path of `git http-backend` (it lives in git's exec path, not on PATH)."""
    exec_path = subprocess.run(
        ["git", "--exec-path"], capture_output=True, text=True, check=True
    ).stdout.strip()
    backend = Path(exec_path) / "git-http-backend"
    if not os.access(backend, os.X_OK):
        raise GitServerError(f"git http-backend not found in {exec_path}")
    return str(backend)


def _handler(root: Path, backend: str) -> type[BaseHTTPRequestHandler]:
    class CGIHandler(BaseHTTPRequestHandler):
        """Runs git http-backend per request (RFC 3875 variables in, CGI response out)."""

        def _cgi(self) -> None:
            path, _, query = self.path.partition("?")
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "GIT_PROJECT_ROOT": str(root),
                "GIT_HTTP_EXPORT_ALL": "1",
                "GATEWAY_INTERFACE": "CGI/1.1",
                "SERVER_PROTOCOL": "HTTP/1.1",
                "REQUEST_METHOD": self.command,
                "PATH_INFO": path,
                "QUERY_STRING": query,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(len(body)),
                "REMOTE_ADDR": self.client_address[0],
                "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
                "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
            }
            result = subprocess.run(
                [backend], input=body, env=env, capture_output=True, timeout=60, check=False
            )
            head, _, payload = result.stdout.partition(b"\r\n\r\n")
            if not _:
                head, _, payload = result.stdout.partition(b"\n\n")
            status, headers = 200, []
            for line in head.decode("latin-1").splitlines():
                name, _, value = line.partition(":")
                if name.lower() == "status":
                    status = int(value.split()[0])
                elif name:
                    headers.append((name, value.strip()))
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = _cgi
        do_POST = _cgi

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: Flux polls every few seconds

    return CGIHandler


class Repository:
    """A bare repository `<name>.git` under the server's root and a working clone."""

    def __init__(self, root: Path, name: str, url: str) -> None:
        self.bare = root / f"{name}.git"
        self.work = root / "work" / name
        self.url = url
        git("init", "--bare", "--initial-branch=main", str(self.bare), cwd=root)
        self.work.mkdir(parents=True)
        git("init", "--initial-branch=main", str(self.work), cwd=root)
        git("remote", "add", "origin", str(self.bare), cwd=self.work)

    def write(self, files: dict[str, str]) -> None:
        """Write (or, for an empty text, delete) files relative to the repository root."""
        for relative, text in files.items():
            path = self.work / relative
            if not text:
                path.unlink(missing_ok=True)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)

    def remove(self, *relative: str) -> None:
        for rel in relative:
            path = self.work / rel
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)

    def commit(self, message: str) -> str:
        """Commit everything in the working clone, push it, and return the commit SHA."""
        git("add", "--all", ".", cwd=self.work)
        git("commit", "--allow-empty", "-q", "-m", message, cwd=self.work)
        git("push", "-q", "origin", "HEAD:refs/heads/main", cwd=self.work)
        return git("rev-parse", "HEAD", cwd=self.work)


class GitServer:
    """`git http-backend` on a free loopback port, serving every `*.git` under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(root, http_backend()))
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, name="git-http", daemon=True
        )

    def start(self) -> GitServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> GitServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def repository(self, name: str) -> Repository:
        return Repository(self.root, name, f"http://127.0.0.1:{self.port}/{name}.git")
