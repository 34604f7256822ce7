"""``/openapi.json``: the HTTP contract (API.md), machine-readable.

Clients generate code from it and schemathesis fuzzes the live service
against it, so it states exactly what the code answers: every status, header
and body shape. Change it together with :mod:`blobsvc.api`.
"""

from __future__ import annotations

import re

from blobsvc.api import LIST_DEFAULT_LIMIT, LIST_MAX_LIMIT
from blobsvc.responses import send_json
from blobsvc.storage.paths import MAX_PATH_BYTES, MAX_SEGMENT_BYTES, RESERVED_PREFIX

# -- schemas ----------------------------------------------------------------

#: What blobsvc.storage.paths.validate_path accepts, as far as a regex can say:
#: "/"-separated segments without control characters or backslashes, none
#: empty, "." or "..", the first not the reserved one. The limits are in
#: UTF-8 bytes, which a regex (or ``maxLength``) can only bound in characters:
#: exact for ASCII, and a non-ASCII path may still get ``invalid_path``.
_SEGMENT = rf"(?!\.\.?(?:/|$))[^/\x00-\x1f\x7f\\]{{1,{MAX_SEGMENT_BYTES}}}"
PATH_PATTERN = rf"^(?!{re.escape(RESERVED_PREFIX)}(?:/|$)){_SEGMENT}(?:/{_SEGMENT})*$"

_PATH_RULES = (
    f"One or more segments joined by `/`. A segment is 1-{MAX_SEGMENT_BYTES} bytes of UTF-8, "
    "has no control character or backslash, and is not `.` or `..`; the whole path is at "
    f"most {MAX_PATH_BYTES} bytes, and its first segment is not `{RESERVED_PREFIX}`. "
    "Names are in Unicode NFC, without bidirectional control characters (U+202A-U+202E, "
    "U+2066-U+2069, U+200E, U+200F, U+061C). "
    "Anything else is answered `400` with code `invalid_path`."
)


def _nullable(type_: str, **extra: object) -> dict:
    return {"type": type_, "nullable": True, **extra}


def _ref(kind: str, name: str) -> dict:
    return {"$ref": f"#/components/{kind}/{name}"}


def _closed_object(properties: dict, description: str) -> dict:
    """An object whose keys are all present and all listed."""
    return {"type": "object", "description": description, "required": list(properties),
            "properties": properties, "additionalProperties": False}


_OBJECT_INFO_PROPERTIES = {
    "path": {"type": "string", "description": "Full path, without a trailing `/`."},
    "name": {"type": "string", "description": "Last segment of `path`."},
    "isdir": {"type": "boolean", "description": "True for a directory (a prefix)."},
    "size": _nullable("integer", minimum=0, description="Bytes; null for a directory."),
    "ctime": _nullable("number", description="Unix time of the last write."),
    "etag": _nullable("string", description="As in the `ETag` header, unquoted; "
                                            "null for a directory."),
    "content_type": _nullable("string", description="Null for a directory."),
}

_HEX = {"md5": 32, "sha256": 64}

SCHEMAS = {
    "ObjectInfo": _closed_object(_OBJECT_INFO_PROPERTIES, "An object or a directory."),
    "PutResult": _closed_object(
        {**_OBJECT_INFO_PROPERTIES,
         **{name: {"type": "string", "pattern": f"^[0-9a-f]{{{digits}}}$",
                   "description": f"Hex {name} of the body received."}
            for name, digits in _HEX.items()}},
        "The stored object, and the digests of the body as received."),
    "Listing": _closed_object({
        "path": {"type": "string",
                 "description": "The directory listed, with a trailing `/`; `\"\"` for the root."},
        "entries": {"type": "array", "items": _ref("schemas", "ObjectInfo"),
                    "description": "Sorted by name; directories have `isdir: true`."},
        "truncated": {"type": "boolean", "description": "More entries follow."},
        "next_marker": _nullable("string", description="Pass as `marker` for the next page; "
                                                       "null unless truncated."),
    }, "One level of a directory, one page of it."),
    "Error": _closed_object({
        "error": {
            "type": "object",
            "required": ["status", "code", "message"],
            "additionalProperties": False,
            "properties": {
                "status": {"type": "integer", "description": "The HTTP status again."},
                "code": {"type": "string", "description": "Stable, machine-readable."},
                "message": {"type": "string", "description": "For humans."},
                "missing": {"type": "array", "items": {"type": "string"},
                            "description": "`POST /v1/cat` only: every chunk that is absent."},
            },
        },
    }, "Every error the service answers, whatever the route."),
    "Status": {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"type": "string"}, "driver": {"type": "string"}},
    },
    "MoveRequest": {
        "type": "object",
        "required": ["from", "to"],
        "properties": {"from": _ref("schemas", "ObjectPath"), "to": _ref("schemas", "ObjectPath")},
    },
    "CatRequest": {
        "type": "object",
        "required": ["path", "chunks"],
        "properties": {
            "path": _ref("schemas", "ObjectPath"),
            "chunks": {"type": "array", "minItems": 1, "items": _ref("schemas", "ObjectPath"),
                       "description": "Concatenated in this order, then deleted. A chunk may "
                                      "repeat, and `path` may be one of them."},
        },
    },
    "ObjectPath": {"type": "string", "minLength": 1, "maxLength": MAX_PATH_BYTES,
                   "pattern": PATH_PATTERN, "description": _PATH_RULES},
}

# -- headers ----------------------------------------------------------------

HEADERS = {
    "ETag": {"description": "Quoted entity tag of the object's version.",
             "schema": {"type": "string", "pattern": '^"[^"]*"$'}},
    "Last-Modified": {"description": "HTTP-date of the last write, in whole seconds.",
                      "schema": {"type": "string"}},
    "Content-Length": {"description": "Bytes in the body (for HEAD: that GET would send).",
                       "schema": {"type": "integer", "minimum": 0}},
    "Accept-Ranges": {"description": "Single byte ranges are served.",
                      "schema": {"type": "string", "enum": ["bytes"]}},
    "Content-Range": {"description": "`bytes FIRST-LAST/SIZE` (206) or `bytes */SIZE` (416).",
                      "schema": {"type": "string", "pattern": r"^bytes (\d+-\d+|\*)/\d+$"}},
    "WWW-Authenticate": {"description": "Basic and Bearer challenges.",
                         "schema": {"type": "string"}},
    "X-Request-Id": {"description": "The client's `X-Request-Id` if short and plain, else "
                                    "a new one; also in the access log.",
                     "schema": {"type": "string"}},
}


def _headers(*names: str, required: tuple[str, ...] = ()) -> dict:
    """Response headers by name; X-Request-Id goes on every answer."""
    out = {}
    for name in (*names, "X-Request-Id"):
        ref = _ref("headers", name)
        out[name] = {**HEADERS[name], "required": True} if name in required else ref
    return out


# -- responses --------------------------------------------------------------

#: Status -> (what it means, error codes it carries).
ERRORS = {
    400: ("Bad request: an invalid path (`invalid_path`, also for a name longer than the "
          "storage filesystem can hold), a malformed header, query "
          "parameter or JSON body, or a message that cannot be framed strictly by RFC 9112 "
          "(`bad_request`; the connection is closed), a body that does not match its "
          "`Content-MD5`/`X-Checksum-Sha256` (`checksum_mismatch`) or that ended early "
          "(`incomplete_body`).",
          ["invalid_path", "bad_request", "checksum_mismatch", "incomplete_body"]),
    401: ("No valid credentials, and anonymous access does not cover the request.",
          ["unauthorized"]),
    403: ("The credentials (or signed URL) do not allow this request.", ["forbidden"]),
    404: ("Nothing at that path.", ["not_found"]),
    409: ("An object and a directory would share a name, or the path is a "
          "non-empty directory.", ["conflict"]),
    411: ("Neither `Content-Length` nor `Transfer-Encoding: chunked`.", ["length_required"]),
    412: ("An `If-*` precondition failed.", ["precondition_failed"]),
    413: ("The body is larger than the configured limit (`server.max_object_size`, "
          "or 1 MiB for JSON bodies), or than the backend accepts.", ["too_large"]),
    416: ("The range selects no byte of the object.", ["range_not_satisfiable"]),
    500: ("An unexpected error (`internal_error`), a file of the store the service "
          "itself may not read or write (`storage_permission_denied`), or another fault "
          "of the storage backend, named by its errno or kind (`storage_error`); details "
          "are in the server log only.",
          ["internal_error", "storage_permission_denied", "storage_error"]),
    503: ("The storage backend does not answer, or its volume is read-only or failing "
          "(I/O errors).", ["backend_unavailable"]),
    507: ("The storage backend is full.", ["insufficient_storage"]),
}

_ERROR_HEADERS = {401: ("WWW-Authenticate",), 416: ("Content-Range",)}


def _error_responses(*statuses: int, body: bool = True,
                     notes: dict[int, str] | None = None) -> dict:
    """Error responses; ``body=False`` for HEAD, whose answers have none.

    401, 403 and 500 go on every operation that checks access; pass them
    explicitly. The body's ``error.status`` repeats the HTTP status.
    """
    out = {}
    for status in statuses:
        meaning, codes = ERRORS[status]
        description = meaning + " Codes: " + ", ".join(f"`{c}`" for c in codes) + "."
        if notes and status in notes:
            description += " " + notes[status]
        names = _ERROR_HEADERS.get(status, ())
        response: dict = {"description": description,
                          "headers": _headers(*names, required=names)}
        if body:
            response["content"] = {"application/json": {"schema": {"allOf": [
                _ref("schemas", "Error"),
                {"properties": {"error": {"properties": {"status": {"enum": [status]}}}}},
            ]}}}
        out[str(status)] = response
    return out


def _json_response(description: str, schema: dict, *header_names: str,
                   required: tuple[str, ...] = (), links: dict | None = None) -> dict:
    response = {"description": description,
                "headers": _headers(*header_names, required=required),
                "content": {"application/json": {"schema": schema}}}
    if links:
        response["links"] = links
    return response


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
        "description": _PATH_RULES + " It may contain `/`, sent literally or as `%2F`: the "
                       "request path is percent-decoded exactly once. It does not end with "
                       "`/` (that is a listing, see `/v1/objects/{dir}/`).",
        "schema": _ref("schemas", "ObjectPath"),
        "x-allow-slashes": True,
    },
    "DirPath": {
        "name": "dir", "in": "path", "required": True, "style": "simple", "explode": False,
        "description": "The directory, without its trailing `/`. " + _PATH_RULES
                       + " It may contain `/`, sent literally or as `%2F`.",
        "schema": _ref("schemas", "ObjectPath"),
        "x-allow-slashes": True,
    },
    "Limit": {
        "name": "limit", "in": "query", "required": False,
        "description": "Entries per page.",
        "schema": {"type": "integer", "minimum": 1, "maximum": LIST_MAX_LIMIT,
                   "default": LIST_DEFAULT_LIMIT},
    },
    "Marker": {
        "name": "marker", "in": "query", "required": False,
        "description": "Return only names sorting after this one (`next_marker` of the "
                       "previous page). Given at most once.",
        "schema": {"type": "string"},
    },
    "XRequestId": _header_param("X-Request-Id", "Echoed in the answer and logged if it is "
                                "1-128 characters of `A-Za-z0-9._:/+=-`; else replaced."),
    **{name.replace("-", ""): _header_param(name, text) for name, text in _IF_HEADERS.items()},
    "ContentMD5": _header_param(
        "Content-MD5", "Base64 MD5 of the body (RFC 1864); a mismatch answers `400` "
        "`checksum_mismatch` and stores nothing.",
        {"type": "string", "minLength": 24, "maxLength": 24, "pattern": "^[A-Za-z0-9+/]{22}==$"}),
    "XChecksumSha256": _header_param(
        "X-Checksum-Sha256", "Hex SHA-256 of the body; a mismatch answers `400` "
        "`checksum_mismatch` and stores nothing.",
        {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"}),
}


def _params(*names: str) -> list[dict]:
    return [_ref("parameters", name) for name in (*names, "XRequestId")]


# -- operations -------------------------------------------------------------

#: Object routes also take signed URLs (see ``blobsvc sign``).
_OBJECT_SECURITY = [{}, {"basicAuth": []}, {"bearerAuth": []}, {"signedUrl": []}]
_OBJECT_HEADERS = ("Content-Length", "Accept-Ranges", "ETag", "Last-Modified")
_BYTES = {"*/*": {"schema": {"type": "string", "format": "binary"}}}


def _read_object(method: str) -> dict:
    body = method == "get"
    success = {"description": "The object; `Content-Type` is the one it was stored with.",
               "headers": _headers(*_OBJECT_HEADERS, required=("Content-Length", "Accept-Ranges"))}
    if body:
        success["content"] = _BYTES
    responses = {
        "200": success,
        "304": {"description": "Not modified (`If-None-Match`, `If-Modified-Since`); no body.",
                "headers": _headers("ETag", "Last-Modified")},
    }
    if body:
        responses["206"] = {
            "description": "One byte range of the object.",
            "headers": _headers(*_OBJECT_HEADERS, "Content-Range",
                                required=("Content-Length", "Accept-Ranges", "Content-Range")),
            "content": _BYTES,
        }
    errors = (400, 404, 412, *((416,) if body else ()), 503)
    responses.update(_error_responses(*errors, *_ACCESS, body=body, notes={
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
    success = {"description": "One page of the directory.",
               "headers": _headers("Content-Length")}
    if body:
        success["content"] = {"application/json": {"schema": _ref("schemas", "Listing")}}
    return {
        "operationId": f"{method}Listing{scope.title()}", "tags": ["objects"],
        "summary": ("List" if body else "Headers of a listing") + f" {scope}, one level deep",
        "description": "Sorted by name, paginated with `limit` and `marker`.",
        "parameters": _params("Limit", "Marker"),
        "responses": {"200": success,
                      **_error_responses(400, 404, 503, *_ACCESS, body=body, notes={
                          400: "Also for a `limit` outside 1-10000 or a repeated parameter.",
                          404: "No such directory (or the path is an object).",
                      })},
    }


def _listing_path(scope: str, description: str, *params: str) -> dict:
    item: dict = {"description": description,
                  "get": _listing("get", scope), "head": _listing("head", scope)}
    if params:
        item["parameters"] = [_ref("parameters", name) for name in params]
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
            "schema": _ref("schemas", f"{name.title()}Request")}}},
        "responses": {
            "201": _json_response("The new object.", _ref("schemas", "ObjectInfo"),
                                  links=_OBJECT_LINKS),
            **_error_responses(*errors, *_ACCESS, notes=notes),
        },
    }}


def _simple_get(operation_id: str, summary: str, responses: dict, head: bool) -> dict:
    item: dict = {}
    for method in ("get", "head") if head else ("get",):
        operation = {"operationId": f"{operation_id}{method.title()}" if head else operation_id,
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
    "parameters": [_ref("parameters", "ObjectPath")],
    "get": _read_object("get"),
    "head": _read_object("head"),
    "put": {
        "operationId": "putObject", "tags": ["objects"],
        "summary": "Store an object, atomically",
        "description": "Streamed to the backend; the object appears only once the whole "
                       "body has arrived and passed its checks. Missing parent directories "
                       "are implied. Needs `Content-Length` or `Transfer-Encoding: chunked`.",
        "parameters": _params("ContentMD5", "XChecksumSha256", "IfMatch", "IfNoneMatch",
                              "IfUnmodifiedSince"),
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
            "201": _json_response("Stored.", _ref("schemas", "PutResult"), "ETag",
                                  required=("ETag",), links=_PUT_LINKS),
            **_error_responses(400, 409, 411, 412, 413, 503, 507, *_ACCESS),
        },
    },
    "delete": {
        "operationId": "deleteObject", "tags": ["objects"], "summary": "Delete an object",
        "description": "Empty parent directories vanish with it.",
        "parameters": _params("IfMatch", "IfNoneMatch", "IfUnmodifiedSince"),
        "security": _OBJECT_SECURITY,
        "responses": {
            "204": {"description": "Deleted; no body.", "headers": _headers()},
            **_error_responses(400, 404, 409, 412, 503, *_ACCESS,
                               notes={409: "The path is a non-empty directory."}),
        },
    },
}

_STATUS = _ref("schemas", "Status")

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
    "/v1/cat": _post(
        "cat", "Concatenate objects",
        "Writes the chunks, in order, to `path`, then deletes them.",
        (400, 404, 409, 411, 412, 413, 503, 507),
        {404: "Some chunks are absent: `error.missing` names every one, and nothing "
              "was created or deleted.",
         412: "The destination `path` fails `If-None-Match` or `If-Match`; the chunks stay."}),
    "/healthz": _simple_get("healthz", "The process serves requests", {
        "200": _json_response("Always `{\"status\": \"ok\"}`.", _STATUS, "Content-Length"),
        **_error_responses(500),
    }, head=True),
    "/readyz": _simple_get("readyz", "The backend answers too", {
        "200": _json_response("`{\"status\": \"ready\", \"driver\": NAME}`.", _STATUS,
                              "Content-Length"),
        **_error_responses(503, 500, notes={503: "The message says why."}),
    }, head=True),
    "/openapi.json": _simple_get("openapi", "This document", {
        "200": _json_response("OpenAPI 3.0.", {"type": "object"}),
        **_error_responses(500),
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
                    "headers": _headers(),
                    "content": {"text/plain": {"schema": {"type": "string"}}}},
            **_error_responses(*_ACCESS),
        },
    }},
}

SPEC: dict = {
    "openapi": "3.0.3",
    "info": {
        "title": "blobsvc",
        "version": "1",
        "description": "HTTP blob storage: objects addressed by `/`-separated paths, "
                       "directories as prefixes, atomic writes, move and concatenate. "
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
