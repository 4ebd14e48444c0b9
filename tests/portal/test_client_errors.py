"""The upload client never takes something that is not the portal answering for the portal's answer."""

from __future__ import annotations

import http.server
import socketserver
import threading

import pytest

from acceldoctor.portal.client import PortalError, request_json


class _Redirecting(http.server.BaseHTTPRequestHandler):
    seen: list = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        self.send_response(301)
        self.send_header("Location", "https://elsewhere.invalid/api/v1/reports")
        self.end_headers()

    def do_GET(self):  # noqa: N802
        type(self).seen.append(self.headers.get("Authorization"))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'{"items": [], "total": 0}')

    def log_message(self, *args):
        pass


class _NotHttp(socketserver.BaseRequestHandler):
    def handle(self):
        # read the whole request first (headers and the 2-byte body): closing earlier can reset the client's send
        received = b""
        while not received.endswith(b"\r\n\r\n{}") and len(received) < 65536:
            chunk = self.request.recv(65536)
            if not chunk:
                break
            received += chunk
        self.request.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")


def _serve(handler) -> tuple[str, socketserver.TCPServer]:
    server = socketserver.TCPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}", server


def test_a_redirect_is_an_error_not_a_read_that_looks_stored():
    # urllib would follow a POST's 301 as a GET, token included, and the GET's 200 looked like a stored upload
    url, server = _serve(_Redirecting)
    try:
        with pytest.raises(PortalError, match=r"redirects \(301\) to https://elsewhere.invalid"):
            request_json("POST", url + "/api/v1/reports", "adp_secret", b"{}")
        assert _Redirecting.seen == []  # nothing was re-sent anywhere, the token least of all
    finally:
        server.shutdown()


def test_a_server_that_does_not_speak_http_is_named_so():
    url, server = _serve(_NotHttp)
    try:
        with pytest.raises(PortalError, match="does not answer as an HTTP server"):
            request_json("POST", url + "/api/v1/reports", "adp_secret", b"{}")
    finally:
        server.shutdown()
