"""`acceldoctor serve` behind a reverse proxy that terminates TLS: the login cookie is marked Secure when the proxy
says the request came over https (X-Forwarded-Proto), and only when the proxy is one --forwarded-allow-ips names.

In-process, with the uvicorn configuration serve builds (server_config) on both databases; and once through a real
`acceldoctor serve`, to show the command-line options reach uvicorn."""

from __future__ import annotations

import re
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from fastapi.testclient import TestClient

from acceldoctor.cli.portal_commands import server_config
from acceldoctor.portal.web.session import COOKIE, LOGIN_NONCE_COOKIE

from .test_cli_portal import _wait_healthy, create_token, free_port

PROXY = "10.0.0.7"
FROM_THE_PROXY_OVER_HTTPS = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.4"}


def login_cookie(client: TestClient, token: str, headers: dict[str, str]) -> str:
    """Log in through the form with `headers` on both requests: the Set-Cookie of the login token."""
    shown = client.get("/login", headers=headers)
    nonce = re.search(r'name="csrf_token" value="([^"]+)"', shown.text).group(1)
    # Sent by hand: over https (as the proxy says) the nonce cookie is Secure, and the test client talks plain http.
    answer = client.post("/login", data={"token": token, "csrf_token": nonce}, follow_redirects=False,
                         headers={**headers, "Cookie": f"{LOGIN_NONCE_COOKIE}={nonce}"})
    assert answer.status_code == 303, answer.text[:300]
    [cookie] = [c for c in answer.headers.get_list("set-cookie") if c.startswith(f"{COOKIE}=")]
    return cookie


def served_app(portal, *, proxy_headers: bool, forwarded_allow_ips: str = PROXY):
    config = server_config(portal.app, proxy_headers=proxy_headers, forwarded_allow_ips=forwarded_allow_ips)
    config.load()  # wraps the app as uvicorn does when it serves it
    return config.loaded_app


def test_the_login_cookie_is_secure_behind_a_trusted_tls_proxy(portal):
    token = portal.tokens["engineer"]
    behind_proxy = TestClient(served_app(portal, proxy_headers=True), client=(PROXY, 40000))
    assert "Secure" in login_cookie(behind_proxy, token, FROM_THE_PROXY_OVER_HTTPS)
    assert "Secure" not in login_cookie(behind_proxy, token, {"X-Forwarded-Proto": "http"})
    # Anyone else saying "https" is not believed: it could make the portal think a plain-http login is secure.
    stranger = TestClient(served_app(portal, proxy_headers=True), client=("10.0.0.8", 40000))
    assert "Secure" not in login_cookie(stranger, token, FROM_THE_PROXY_OVER_HTTPS)
    not_told = TestClient(served_app(portal, proxy_headers=False), client=(PROXY, 40000))
    assert "Secure" not in login_cookie(not_told, token, FROM_THE_PROXY_OVER_HTTPS)


def _login_over_real_server(url: str, token: str) -> str:
    """As a proxy on this machine would pass a browser's https login on: the Set-Cookie of the login token."""
    with urllib.request.urlopen(urllib.request.Request(url + "/login", headers=FROM_THE_PROXY_OVER_HTTPS)) as shown:
        nonce = re.search(r'name="csrf_token" value="([^"]+)"', shown.read().decode()).group(1)
    body = f"token={token}&csrf_token={nonce}".encode()
    request = urllib.request.Request(url + "/login", data=body, method="POST", headers={
        **FROM_THE_PROXY_OVER_HTTPS, "Cookie": f"{LOGIN_NONCE_COOKIE}={nonce}",
        "Content-Type": "application/x-www-form-urlencoded"})

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    with pytest.raises(urllib.error.HTTPError) as answered:  # the 303 that follows a login
        urllib.request.build_opener(NoRedirect).open(request, timeout=30)
    assert answered.value.code == 303
    [cookie] = [c for c in answered.value.headers.get_all("set-cookie") if c.startswith(f"{COOKIE}=")]
    return cookie


@pytest.mark.parametrize("options, secure", [([], True), (["--forwarded-allow-ips", PROXY], False)])
def test_serve_options_decide_whom_to_believe(tmp_path, options, secure):
    """By default a proxy on the same machine is believed (uvicorn's own default, made explicit); with
    --forwarded-allow-ips naming another proxy, this machine is not."""
    db = f"sqlite:///{tmp_path / 'portal.db'}"
    token = create_token(db, "engineer", "proxy test")
    port, log = free_port(), tmp_path / "serve.log"
    with log.open("w") as sink:
        process = subprocess.Popen([sys.executable, "-m", "acceldoctor", "serve", "--db", db, "--port", str(port),
                                    *options], stdout=sink, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process, log)
        assert ("Secure" in _login_over_real_server(url, token)) is secure
    finally:
        process.terminate()
        process.wait(timeout=30)
