"""A small HTTP service: GET /health, and GET /hello?name=... as JSON."""

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        url = urlparse(self.path)
        if url.path == "/health":
            body = b"ok\n"
            kind = "text/plain"
        elif url.path == "/hello":
            name = parse_qs(url.query).get("name", ["world"])[0]
            body = json.dumps({"greeting": f"hello, {name}"}).encode() + b"\n"
            kind = "application/json"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt: str, *args: object) -> None:
        print("web:", fmt % args, flush=True)


if __name__ == "__main__":
    # All interfaces: the published port arrives on eth0 (from QEMU's
    # forward), the readiness probe on loopback.
    ThreadingHTTPServer(("0.0.0.0", 8000), Handler).serve_forever()
