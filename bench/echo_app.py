"""The baseline for the HTTP benchmark: a bare Flask app that only parses and echoes JSON."""

from __future__ import annotations

import json

from flask import Flask, Response, request

app = Flask(__name__)


@app.get("/")
def up() -> Response:
    return Response("{}", mimetype="application/json")


@app.post("/cds-services/<service_id>")
def echo(service_id: str) -> Response:
    body = json.loads(request.get_data())
    return Response(json.dumps({"cards": [], "echo": len(body)}), mimetype="application/json")
