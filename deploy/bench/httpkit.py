"""Small stdlib-only HTTP helpers shared by the bench and fault scripts.

Everything here talks to 127.0.0.1 only; callers pass a port, never a host.
"""

import http.client
import json
import socket
import time

HOST = "127.0.0.1"


class Client:
    """One keep-alive connection that reconnects after any error."""

    def __init__(self, port, timeout=10.0):
        self.port = port
        self.timeout = timeout
        self.conn = None

    def close(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except OSError:
                pass
        self.conn = None

    def request(self, method, path, body=None, token=None, headers=None):
        """Returns (status, headers_dict, body_bytes); raises OSError/HTTPException on transport errors."""
        hdrs = {"Accept": "application/json"}
        if headers:
            hdrs.update(headers)
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        if token:
            hdrs["Authorization"] = "Bearer " + token
        if self.conn is None:
            self.conn = http.client.HTTPConnection(HOST, self.port, timeout=self.timeout)
        try:
            self.conn.request(method, path, body=data, headers=hdrs)
            resp = self.conn.getresponse()
            payload = resp.read()
            result = (resp.status, {k.lower(): v for k, v in resp.getheaders()}, payload)
            if resp.getheader("connection", "").lower() == "close":
                self.close()
            return result
        except (OSError, http.client.HTTPException):
            self.close()
            raise

    def json(self, method, path, body=None, token=None, expect=None):
        status, headers, payload = self.request(method, path, body=body, token=token)
        if expect is not None and status != expect:
            raise RuntimeError(f"{method} {path}: expected {expect}, got {status}: {payload[:300]!r}")
        return status, (json.loads(payload) if payload else None)


def wait_ready(port, timeout=30.0, path="/health/ready"):
    """Polls until `path` answers 200; returns seconds waited or raises TimeoutError."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            conn = http.client.HTTPConnection(HOST, port, timeout=1.0)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                conn.close()
                return time.monotonic() - start
            conn.close()
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{path} on port {port} not ready after {timeout}s")


def port_open(port):
    s = socket.socket()
    s.settimeout(0.5)
    try:
        s.connect((HOST, port))
        return True
    except OSError:
        return False
    finally:
        s.close()
