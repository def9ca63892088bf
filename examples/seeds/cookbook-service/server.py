"""The service the seed's command entrypoint runs: a small HTTP server on
127.0.0.1:8080 that reports what the migration left behind."""

import http.server
import pathlib

STATE = pathlib.Path("/run/service-db")


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = ("ok " + STATE.read_text()).encode() if self.path == "/health" else b"not found"
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


http.server.HTTPServer(("127.0.0.1", 8080), Handler).serve_forever()
