"""``/openapi.json``: the HTTP contract (API.md), machine-readable.

Clients generate code from it and schemathesis fuzzes the live service
against it, so it states exactly what the code answers: every status, header
and body shape. Change it together with :mod:`blobsvc.native.resources`.
"""

from __future__ import annotations

from blobsvc.http.responses import send_json
from blobsvc.native.resources import (
    HTML_DEFAULT_LIMIT,
    LIST_DEFAULT_LIMIT,
    LIST_MAX_LIMIT,
    MAX_BULK_DELETE,
)
from blobsvc.native.schemas import (
    HEADERS,
    PATH_RULES,
    SCHEMAS,
    error_responses,
    json_response,
    ref,
    response_headers,
)
from blobsvc.storage.metadata import MAX_METADATA_BYTES, MAX_METADATA_ITEMS, STORED_HEADERS

#: From an answer carrying an ObjectInfo to what can be done with its path next
#: (clients and schemathesis' stateful tests follow these).
_OBJECT_LINKS = {
    f"{verb.title()}Object": {"operationId": f"{verb}Object",
                              "parameters": {"path": "$response.body#/path"}}
    for verb in ("get", "head", "delete")
}
_PUT_LINKS = {
    **_OBJECT_LINKS,
    "MoveObject": {"operationId": "move", "requestBody": {
        "from": "$response.body#/path", "to": "{$response.body#/path}.moved"}},
    "CatObject": {"operationId": "cat", "requestBody": {
        "path": "{$response.body#/path}.cat", "chunks": ["$response.body#/path"]}},
    "CopyObject": {"operationId": "copy", "requestBody": {
        "from": "$response.body#/path", "to": "{$response.body#/path}.copy"}},
    "UpdateObject": {"operationId": "updateObject",
                     "parameters": {"path": "$response.body#/path"}},
}


#: The errors of any route that checks access.
_ACCESS = (401, 403, 500)

# -- parameters -------------------------------------------------------------

_IF_HEADERS = {
    "If-Match": "Entity tags (or `*`); no match answers `412`.",
    "If-None-Match": "Entity tags (or `*`); a match answers `304` on GET/HEAD, `412` "
                     "on PUT/DELETE. `If-None-Match: *` on PUT creates only.",
    "If-Modified-Since": "HTTP-date; GET/HEAD only, `304` when not modified since.",
    "If-Unmodified-Since": "HTTP-date; `412` when modified since.",
    "Range": "`bytes=FIRST-LAST`, `bytes=FIRST-` or `bytes=-SUFFIX`. A malformed header "
             "or several ranges get the whole object (`200`).",
    "If-Range": "An entity tag or HTTP-date: the range is served only if it still matches.",
}


def _header_param(name: str, description: str, schema: dict | None = None) -> dict:
    return {"name": name, "in": "header", "required": False, "description": description,
            "schema": schema or {"type": "string"}}


PARAMETERS = {
    "ObjectPath": {
        "name": "path", "in": "path", "required": True, "style": "simple", "explode": False,
        "description": PATH_RULES + " It may contain `/`, sent literally or as `%2F`: the "
                       "request path is percent-decoded exactly once. It does not end with "
                       "`/` (that is a listing, see `/v1/objects/{dir}/`).",
        "schema": ref("schemas", "ObjectPath"),
        "x-allow-slashes": True,
    },
    "DirPath": {
        "name": "dir", "in": "path", "required": True, "style": "simple", "explode": False,
        "description": "The directory, without its trailing `/`. " + PATH_RULES
                       + " It may contain `/`, sent literally or as `%2F`.",
        "schema": ref("schemas", "ObjectPath"),
        "x-allow-slashes": True,
    },
    "Limit": {
        "name": "limit", "in": "query", "required": False,
        "description": f"Entries per page. An HTML page (for a browser) given no `limit` "
                       f"holds up to {HTML_DEFAULT_LIMIT}, so that a directory index is whole.",
        "schema": {"type": "integer", "minimum": 1, "maximum": LIST_MAX_LIMIT,
                   "default": LIST_DEFAULT_LIMIT},
    },
    "Marker": {
        "name": "marker", "in": "query", "required": False,
        "description": "Return only names sorting after this one (`next_marker` of the "
                       "previous page). Given at most once.",
        "schema": {"type": "string"},
    },
    "Prefix": {
        "name": "prefix", "in": "query", "required": False,
        "description": "Only entries whose names start with this (with `recursive=true`: "
                       "whose paths below the directory do). Without `recursive`, a prefix "
                       "holding `/` matches nothing.",
        "schema": {"type": "string"},
    },
    "Recursive": {
        "name": "recursive", "in": "query", "required": False,
        "description": "With `true`, every object below the directory, flat, sorted by full path "
                       "in code-point order (`a.txt` before `a/b`), no directory entries; "
                       "`marker` and `next_marker` are then full paths.",
        "schema": {"type": "boolean", "default": False},
    },
    "XDeleteAt": _header_param(
        "X-Delete-At", "Unix time at which the object expires: from then on it answers "
        "`404` and is not listed. Not in the future, malformed, or sent with "
        "`X-Delete-After`: `400` `invalid_metadata`.",
        {"type": "integer", "minimum": 0}),
    "XDeleteAfter": _header_param(
        "X-Delete-After", "Seconds from now after which the object expires (see "
        "`X-Delete-At`).", {"type": "integer", "minimum": 1}),
    **{name.replace("-", ""): _header_param(
        name, "Stored with the object and sent back verbatim on GET and HEAD.")
       for name in STORED_HEADERS},
    "XRequestId": _header_param("X-Request-Id", "Echoed in the answer and logged if it is "
                                "1-128 characters of `A-Za-z0-9._:/+=-`; else replaced."),
    **{name.replace("-", ""): _header_param(name, text) for name, text in _IF_HEADERS.items()},
    "ContentMD5": _header_param(
        "Content-MD5", "Base64 MD5 of the body (RFC 1864); a mismatch answers `400` "
        "`checksum_mismatch` and stores nothing.",
        {"type": "string", "minLength": 24, "maxLength": 24, "pattern": "^[A-Za-z0-9+/]{22}==$"}),
    "XChecksumSha256": _header_param(
        "X-Checksum-Sha256", "Hex SHA-256 of the body; a mismatch answers `400` "
        "`checksum_mismatch` and stores nothing. Sent, it also makes the answer's "
        "`sha256` the body's (otherwise null, unless the server computes it always).",
        {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"}),
}


def _params(*names: str) -> list[dict]:
    return [ref("parameters", name) for name in (*names, "XRequestId")]


# -- operations -------------------------------------------------------------

#: Object routes also take signed URLs (see ``blobsvc sign``).
_OBJECT_SECURITY: list[dict[str, list[str]]] = [{}, {"basicAuth": []}, {"bearerAuth": []}, {"signedUrl": []}]
_OBJECT_HEADERS = ("Content-Length", "Accept-Ranges", "ETag", "Last-Modified", "X-Timestamp",
                   *STORED_HEADERS, "X-Delete-At")
#: Parameters of a write that sets metadata (PUT, POST).
_META_PARAMS = ("XDeleteAt", "XDeleteAfter", *(name.replace("-", "") for name in STORED_HEADERS))
_METADATA_TEXT = (
    "User metadata travels as `X-Object-Meta-{name}: value` headers (OpenAPI cannot list "
    "them): names of 1-128 `A-Za-z0-9_-`, kept lower-cased; values UTF-8 text, sent back "
    f"as the same bytes; at most {MAX_METADATA_BYTES} bytes of names and values per object, "
    f"in at most {MAX_METADATA_ITEMS} names, "
    "else `400` `metadata_too_large` (a bad name or value: `invalid_metadata`), and nothing "
    "is stored.")
_BYTES = {"*/*": {"schema": {"type": "string", "format": "binary"}}}


def _read_object(method: str) -> dict:
    body = method == "get"
    success = {"description": "The object as stored: `Content-Type` and the stored headers "
                              "as written, `X-Object-Meta-*` for its metadata (a gzip object "
                              "is never decoded; ranges count stored bytes).",
               "headers": response_headers(*_OBJECT_HEADERS, required=("Content-Length", "Accept-Ranges"))}
    if body:
        success["content"] = _BYTES
    responses = {
        "200": success,
        "304": {"description": "Not modified (`If-None-Match`, `If-Modified-Since`); no body.",
                "headers": response_headers("ETag", "Last-Modified", "Cache-Control",
                                            "Expires")},
    }
    if body:
        responses["206"] = {
            "description": "One byte range of the object.",
            "headers": response_headers(*_OBJECT_HEADERS, "Content-Range",
                                required=("Content-Length", "Accept-Ranges", "Content-Range")),
            "content": _BYTES,
        }
    errors = (400, 404, 412, *((416,) if body else ()), 503)
    responses.update(error_responses(*errors, *_ACCESS, body=body, notes={
        404: "Also when the path is a directory.",
        503: "Also when the object kept changing while a range of it was read.",
    }))
    params = ["IfMatch", "IfNoneMatch", "IfModifiedSince", "IfUnmodifiedSince"]
    if body:
        params += ["Range", "IfRange"]
    return {
        "operationId": f"{method}Object", "tags": ["objects"],
        "summary": "Read an object" if body else "An object's headers, no body",
        "parameters": _params(*params),
        "security": _OBJECT_SECURITY,
        "responses": responses,
    }



def _listing(method: str, scope: str) -> dict:
    body = method == "get"
    success = {"description": "One page of the directory: JSON, or a plain HTML page (no "
                              "script, every name escaped) for a client whose `Accept` "
                              "prefers `text/html` to JSON, as a browser's does.",
               "headers": response_headers("Content-Length")}
    if body:
        success["content"] = {"application/json": {"schema": ref("schemas", "Listing")},
                              "text/html": {"schema": {"type": "string"}}}
    return {
        "operationId": f"{method}Listing{scope.title()}", "tags": ["objects"],
        "summary": ("List" if body else "Headers of a listing") + f" {scope}, one level deep",
        "description": "Sorted by name, paginated with `limit` and `marker`; entries carry no "
                       "`metadata` (HEAD an object for it). Unknown query parameters are "
                       "`400`.",
        "parameters": _params("Limit", "Marker", "Prefix", "Recursive"),
        "responses": {"200": success,
                      **error_responses(400, 404, 503, *_ACCESS, body=body, notes={
                          400: "Also for a `limit` outside 1-10000, a `recursive` other than "
                               "`true`/`false`, or a repeated parameter.",
                          404: "No such directory (or the path is an object).",
                      })},
    }


def _listing_path(scope: str, description: str, *params: str) -> dict:
    item: dict = {"description": description,
                  "get": _listing("get", scope), "head": _listing("head", scope)}
    if params:
        item["parameters"] = [ref("parameters", name) for name in params]
    return item


#: Conditions on the destination of a move or cat, checked atomically with its commit.
_DESTINATION_CONDITIONS = {
    "If-None-Match": "`*`: create only; `412` if the destination exists. Entity tags: "
                     "`412` if the destination's matches one.",
    "If-Match": "Entity tags (or `*`): replace only that version of the destination; `412` "
                "if it is absent or another.",
    "If-Unmodified-Since": "HTTP-date: `412` if the destination was modified since.",
}


def _post(name: str, summary: str, description: str, errors: tuple[int, ...],
          notes: dict[int, str]) -> dict:
    conditions = [_header_param(header, text) for header, text in _DESTINATION_CONDITIONS.items()]
    return {"post": {
        "operationId": name, "tags": ["operations"], "summary": summary,
        "description": description + " An existing destination is overwritten unless the "
                       "request carries `If-None-Match: *` or `If-Match`; on `412` nothing "
                       "changes. Atomic for readers. Other keys in the body are ignored.",
        "parameters": [*conditions, *_params()],
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": ref("schemas", f"{name.title()}Request")}}},
        "responses": {
            "201": json_response("The new object.", ref("schemas", "ObjectInfo"), "Location",
                                  required=("Location",), links=_OBJECT_LINKS),
            **error_responses(*errors, *_ACCESS, notes=notes),
        },
    }}


def _simple_get(operation_id: str, summary: str, responses: dict, head: bool) -> dict:
    item: dict = {}
    for method in ("get", "head") if head else ("get",):
        operation: dict = {"operationId": f"{operation_id}{method.title()}" if head else operation_id,
                     "tags": ["service"], "summary": summary, "security": [],
                     "parameters": _params(), "responses": {}}
        for status, response in responses.items():
            if method == "head":
                response = {key: value for key, value in response.items() if key != "content"}
            operation["responses"][status] = response
        item[method] = operation
    return item


_OBJECT_PATH = {
    "description": "One object. `{path}` may contain `/`.",
    "parameters": [ref("parameters", "ObjectPath")],
    "get": _read_object("get"),
    "head": _read_object("head"),
    "put": {
        "operationId": "putObject", "tags": ["objects"],
        "summary": "Store an object, atomically",
        "description": "Streamed to the backend; the object appears only once the whole "
                       "body has arrived and passed its checks. Missing parent directories "
                       "are implied. Needs `Content-Length` or `Transfer-Encoding: chunked`. "
                       + _METADATA_TEXT,
        "parameters": _params("ContentMD5", "XChecksumSha256", "IfMatch", "IfNoneMatch",
                              "IfUnmodifiedSince", *_META_PARAMS),
        "security": _OBJECT_SECURITY,
        "requestBody": {
            "required": False,
            "description": "The bytes. Any media type is accepted, not only the one listed: "
                           "the request's `Content-Type` (default `application/octet-stream`) "
                           "is stored and served back by GET.",
            "content": {"application/octet-stream": {"schema": {"type": "string",
                                                                 "format": "binary"}}},
        },
        "responses": {
            "201": json_response("Stored.", ref("schemas", "PutResult"), "ETag", "Location",
                                  required=("ETag", "Location"), links=_PUT_LINKS),
            **error_responses(400, 409, 411, 412, 413, 503, 507, *_ACCESS),
        },
    },
    "post": {
        "operationId": "updateObject", "tags": ["objects"],
        "summary": "Replace an object's metadata, stored headers and expiry",
        "description": "Like Swift's POST: the metadata, stored headers and expiry become "
                       "those of this request (absent ones are removed); `Content-Type` "
                       "changes only when sent. The bytes and ETag stay. A body is not "
                       "read. " + _METADATA_TEXT,
        "parameters": _params("IfMatch", "IfNoneMatch", "IfUnmodifiedSince", *_META_PARAMS),
        "security": _OBJECT_SECURITY,
        "responses": {
            "200": json_response("The object as it now is.", ref("schemas", "ObjectInfo"),
                                 links=_OBJECT_LINKS),
            **error_responses(400, 404, 409, 412, 503, 507, *_ACCESS,
                              notes={404: "Also when the path is a directory."}),
        },
    },
    "delete": {
        "operationId": "deleteObject", "tags": ["objects"], "summary": "Delete an object",
        "description": "Empty parent directories vanish with it.",
        "parameters": _params("IfMatch", "IfNoneMatch", "IfUnmodifiedSince"),
        "security": _OBJECT_SECURITY,
        "responses": {
            "204": {"description": "Deleted; no body.", "headers": response_headers()},
            **error_responses(400, 404, 409, 412, 503, *_ACCESS,
                               notes={409: "The path is a non-empty directory."}),
        },
    },
}

_STATUS = ref("schemas", "Status")

PATHS = {
    "/v1/objects/{path}": _OBJECT_PATH,
    "/v1/objects/": _listing_path("root", "The root directory."),
    "/v1/objects/{dir}/": _listing_path(
        "dir", "A directory: the path with a trailing `/`. `{dir}` may contain `/`.", "DirPath"),
    "/v1/objects": _listing_path("bare", "The root directory too (no trailing `/`)."),
    "/v1/move": _post(
        "move", "Rename an object",
        "Moves `from` to `to`, server side where the backend can.",
        (400, 404, 409, 411, 412, 413, 503, 507),
        {404: "`from` is absent.", 409: "`from` is a directory, or `to` clashes with one.",
         412: "The destination `to` fails `If-None-Match` or `If-Match`; `from` stays."}),
    "/v1/copy": _post(
        "copy", "Copy an object",
        "Copies `from` to `to` server side, with its content type, stored headers and "
        "metadata but not its expiry; `metadata`, `content_type`, `headers` and "
        "`expires_at` in the body each replace that one. `from` stays.",
        (400, 404, 409, 411, 412, 413, 503, 507),
        {404: "`from` is absent.", 409: "`from` is a directory, or `to` clashes with one.",
         412: "The destination `to` fails `If-None-Match` or `If-Match`."}),
    "/v1/cat": _post(
        "cat", "Concatenate objects",
        "Writes the chunks, in order, to `path`, then deletes them. The result carries "
        "the request's `metadata`, `content_type`, `headers` and `expires_at`, none of "
        "the chunks'.",
        (400, 404, 409, 411, 412, 413, 503, 507),
        {404: "Some chunks are absent: `error.missing` names every one, and nothing "
              "was created or deleted.",
         412: "The destination `path` fails `If-None-Match` or `If-Match`; the chunks stay."}),
    "/v1/delete": {"post": {
        "operationId": "deleteMany", "tags": ["operations"], "summary": "Delete many objects",
        "description": f"Deletes each of `paths` (at most {MAX_BULK_DELETE}), judged alone: "
                       "one the caller may not write, one that is absent and one that fails "
                       "are reported in the answer, and the others are deleted. `200` whatever "
                       "the outcomes; a malformed body is `400` and deletes nothing. Other keys "
                       "in the body are ignored.",
        "parameters": _params(),
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": ref("schemas", "DeleteRequest")}}},
        "responses": {
            "200": json_response("What became of each path.", ref("schemas", "DeleteResult")),
            **error_responses(400, 411, 413, 503, *_ACCESS),
        },
    }},
    "/healthz": _simple_get("healthz", "The process serves requests", {
        "200": json_response("Always `{\"status\": \"ok\"}`.", _STATUS, "Content-Length"),
        **error_responses(500),
    }, head=True),
    "/readyz": _simple_get("readyz", "The backend answers too", {
        "200": json_response("`{\"status\": \"ready\", \"driver\": NAME}`.", _STATUS,
                              "Content-Length"),
        **error_responses(503, 500, notes={503: "The message says why."}),
    }, head=True),
    "/openapi.json": _simple_get("openapi", "This document", {
        "200": json_response("OpenAPI 3.0.", {"type": "object"}),
        **error_responses(500),
    }, head=False),
    "/metrics": {"get": {
        "operationId": "metrics", "tags": ["service"],
        "summary": "Prometheus metrics",
        "description": "Requests by method, route and status; latency; bytes in and out; "
                       "requests in flight; backend errors. Needs read access unless "
                       "`auth.public_metrics` is set.",
        "parameters": _params(),
        "responses": {
            "200": {"description": "Prometheus text exposition format.",
                    "headers": response_headers(),
                    "content": {"text/plain": {"schema": {"type": "string"}}}},
            **error_responses(*_ACCESS),
        },
    }},
}

SPEC: dict = {
    "openapi": "3.0.3",
    "info": {
        "title": "blobsvc",
        "version": "1",
        "description": "HTTP blob storage: objects addressed by `/`-separated paths, "
                       "directories as prefixes, atomic writes, metadata and expiry, move, "
                       "copy and concatenate. "
                       "Every error is the JSON `Error`.",
    },
    "tags": [{"name": "objects"}, {"name": "operations"}, {"name": "service"}],
    "paths": PATHS,
    "security": [{}, {"basicAuth": []}, {"bearerAuth": []}],
    "components": {
        "schemas": SCHEMAS,
        "headers": HEADERS,
        "parameters": PARAMETERS,
        "securitySchemes": {
            "basicAuth": {"type": "http", "scheme": "basic",
                          "description": "A user from the config's `auth.users`."},
            "bearerAuth": {"type": "http", "scheme": "bearer",
                           "description": "A token from `auth.tokens` or `BLOBSVC_TOKEN`."},
            "signedUrl": {"type": "apiKey", "in": "query", "name": "signature",
                          "description": "With `expires` (Unix time) beside it, as made by "
                                         "`blobsvc sign`: one method on one object path."},
        },
    },
}


class OpenApiResource:
    def GET(self) -> bytes:
        return send_json(SPEC)
