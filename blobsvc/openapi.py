"""``/openapi.json``: the API described for clients and fuzzers."""

from __future__ import annotations

from blobsvc.responses import send_json

SPEC: dict = {"openapi": "3.0.3", "info": {"title": "blobsvc", "version": "1"}, "paths": {}}


class OpenApiResource:
    def GET(self) -> bytes:
        return send_json(SPEC)
