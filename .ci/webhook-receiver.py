#!/usr/bin/env python3
"""A tiny Alertmanager webhook receiver for CI (.ci/alerting.sh).

Listens on 127.0.0.1 (port 0 = any free port), writes the port it got to PORT_FILE once it
listens, and appends one JSON line per POST to OUT_FILE: {"path": ..., "body": <the parsed
webhook JSON>}. Answers 200 to every POST, 404 to anything else.

Usage: webhook-receiver.py PORT_FILE OUT_FILE [PORT]
"""
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT_FILE, OUT_FILE = sys.argv[1], sys.argv[2]
PORT = int(sys.argv[3]) if len(sys.argv) > 3 else 0

class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw)
        except ValueError:
            body = {"unparsed": raw.decode("utf-8", "replace")}
        with open(OUT_FILE, "a", encoding="utf-8") as out:
            out.write(json.dumps({"path": self.path, "body": body}) + "\n")
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, fmt, *args):
        sys.stderr.write("webhook-receiver: " + (fmt % args) + "\n")

server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
with open(PORT_FILE + ".tmp", "w", encoding="utf-8") as f:
    f.write(str(server.server_address[1]))
# Renamed into place, so a reader never sees a half-written port.
os.replace(PORT_FILE + ".tmp", PORT_FILE)
server.serve_forever()
