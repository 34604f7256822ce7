"""The building blocks of ``/openapi.json``: schemas, headers, error answers.

Derived from the code where the code says it: the object schema from
:class:`~blobsvc.storage.ObjectInfo`'s fields, the error answers from the
error vocabulary (:mod:`blobsvc.http.errors`), path rules from
:mod:`blobsvc.storage.paths`; what is left by hand is the prose.
"""

from __future__ import annotations

import dataclasses
import re
import typing

from blobsvc.http.errors import VOCABULARY, codes_for
from blobsvc.storage import ObjectInfo
from blobsvc.storage.metadata import STORED_HEADERS
from blobsvc.storage.paths import MAX_PATH_BYTES, MAX_SEGMENT_BYTES, RESERVED_PREFIX

# -- schemas ----------------------------------------------------------------

#: What blobsvc.storage.paths.validate_path accepts, as far as a regex can say:
#: "/"-separated segments without control characters or backslashes, none
#: empty, "." or "..", the first not the reserved one. The limits are in
#: UTF-8 bytes, which a regex (or ``maxLength``) can only bound in characters:
#: exact for ASCII, and a non-ASCII path may still get ``invalid_path``.
_SEGMENT = rf"(?!\.\.?(?:/|$))[^/\x00-\x1f\x7f\\]{{1,{MAX_SEGMENT_BYTES}}}"
PATH_PATTERN = rf"^(?!{re.escape(RESERVED_PREFIX)}(?:/|$)){_SEGMENT}(?:/{_SEGMENT})*$"

PATH_RULES = (
    f"One or more segments joined by `/`. A segment is 1-{MAX_SEGMENT_BYTES} bytes of UTF-8, "
    "has no control character or backslash, and is not `.` or `..`; the whole path is at "
    f"most {MAX_PATH_BYTES} bytes, and its first segment is not `{RESERVED_PREFIX}`. "
    "Names are in Unicode NFC, without bidirectional control characters (U+202A-U+202E, "
    "U+2066-U+2069, U+200E, U+200F, U+061C). "
    "Anything else is answered `400` with code `invalid_path`."
)


def _nullable(type_: str, **extra: object) -> dict:
    return {"type": type_, "nullable": True, **extra}


def ref(kind: str, name: str) -> dict:
    return {"$ref": f"#/components/{kind}/{name}"}


def _closed_object(properties: dict, description: str) -> dict:
    """An object whose keys are all present and all listed."""
    return {"type": "object", "description": description, "required": list(properties),
            "properties": properties, "additionalProperties": False}


#: What each of ObjectInfo's fields means to a client; a field added to
#: ObjectInfo without a line here fails at import, so the two stay in step.
_OBJECT_INFO_DOCS = {
    "path": "Full path, without a trailing `/`.",
    "name": "Last segment of `path`.",
    "isdir": "True for a directory (a prefix).",
    "size": "Bytes; null for a directory.",
    "ctime": "Unix time of the last write.",
    "etag": "As in the `ETag` header, unquoted; null for a directory.",
    "content_type": "Null for a directory.",
    "metadata": "User metadata (`X-Object-Meta-*`), names lower-cased; null in listings "
                "(HEAD the object for it) and for a directory.",
    "headers": "Stored representation headers (`Content-Encoding`, `Content-Disposition`, "
               "`Content-Language`, `Cache-Control`, `Expires`), as GET sends them back; "
               "null where `metadata` is.",
    "expires_at": "Unix time after which the object is gone (`X-Delete-At`); null if never.",
}
_JSON_TYPES = {str: "string", bool: "boolean", int: "integer", float: "number"}
_MINIMUM = {"size": 0}
#: Never None in Python, but written as null where listings leave them out.
_NULL_IN_LISTINGS = {"headers"}


def _field_schema(name: str, annotation: object) -> dict:
    """A dataclass field's JSON schema, from its annotation (``X | None`` is nullable)."""
    args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
    nullable = bool(typing.get_args(annotation)) and len(args) < len(typing.get_args(annotation))
    python_type = typing.cast(type, args[0] if nullable else annotation)
    schema: dict
    if typing.get_origin(python_type) is typing.get_origin(typing.Mapping):
        schema = {"type": "object", "additionalProperties": {"type": "string"},
                  "description": _OBJECT_INFO_DOCS[name]}
    else:
        schema = {"type": _JSON_TYPES[python_type], "description": _OBJECT_INFO_DOCS[name]}
    if name in _MINIMUM:
        schema["minimum"] = _MINIMUM[name]
    if nullable or name in _NULL_IN_LISTINGS:
        schema["nullable"] = True
    return schema


def _object_info_properties() -> dict:
    """The fields ObjectInfo.to_json writes."""
    hints = typing.get_type_hints(ObjectInfo)
    written = ObjectInfo.directory("a").to_json()
    properties = {f.name: _field_schema(f.name, hints[f.name])
                  for f in dataclasses.fields(ObjectInfo) if f.name in written}
    if set(properties) != set(_OBJECT_INFO_DOCS) or set(written) != set(properties):
        raise RuntimeError(f"ObjectInfo fields {sorted(properties)} and their docs "
                           f"{sorted(_OBJECT_INFO_DOCS)} differ")
    return properties


_OBJECT_INFO_PROPERTIES = _object_info_properties()

#: The digests in a PUT answer. SHA-256 is computed only when asked for (it
#: costs about as much as MD5, which every PUT pays for its ETag).
_DIGESTS = {
    "md5": _nullable("string", pattern="^[0-9a-f]{32}$",
                     description="Hex MD5 of the body received (the ETag of an object "
                                 "stored whole). Null only on Swift, for a write that lost "
                                 "a race to a newer version (the answer then describes that "
                                 "version)."),
    "sha256": _nullable("string", pattern="^[0-9a-f]{64}$",
                        description="Hex SHA-256 of the body received when the request sent "
                                    "`X-Checksum-Sha256` or the server's `always_sha256` "
                                    "setting is on; null otherwise."),
}

SCHEMAS = {
    "ObjectInfo": _closed_object(_OBJECT_INFO_PROPERTIES, "An object or a directory."),
    "PutResult": _closed_object(
        {**_OBJECT_INFO_PROPERTIES, **_DIGESTS},
        "The stored object, and the digests of the body as received."),
    "Listing": _closed_object({
        "path": {"type": "string",
                 "description": "The directory listed, with a trailing `/`; `\"\"` for the root."},
        "entries": {"type": "array", "items": ref("schemas", "ObjectInfo"),
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
        "properties": {"from": ref("schemas", "ObjectPath"), "to": ref("schemas", "ObjectPath")},
    },
    "CopyRequest": {
        "type": "object",
        "required": ["from", "to"],
        "properties": {"from": ref("schemas", "ObjectPath"), "to": ref("schemas", "ObjectPath"),
                       "metadata": ref("schemas", "Metadata"),
                       "content_type": {"type": "string",
                                        "description": "Replaces the source's."},
                       "headers": ref("schemas", "StoredHeaders"),
                       "expires_at": ref("schemas", "ExpiresAt")},
    },
    "CatRequest": {
        "type": "object",
        "required": ["path", "chunks"],
        "properties": {
            "path": ref("schemas", "ObjectPath"),
            "chunks": {"type": "array", "minItems": 1, "items": ref("schemas", "ObjectPath"),
                       "description": "Concatenated in this order, then deleted. A chunk may "
                                      "repeat, and `path` may be one of them."},
            "metadata": ref("schemas", "Metadata"),
            "content_type": {"type": "string",
                             "description": "Default `application/octet-stream`."},
            "headers": ref("schemas", "StoredHeaders"),
            "expires_at": ref("schemas", "ExpiresAt"),
        },
    },
    "StoredHeaders": {"type": "object", "additionalProperties": {"type": "string"},
                      "description": "Stored representation headers by name ("
                                     + ", ".join(f"`{name}`" for name in STORED_HEADERS)
                                     + "), sent back verbatim on GET and HEAD."},
    "ExpiresAt": {"type": "integer", "nullable": True, "minimum": 0,
                  "description": "Unix time after which the result is gone, as "
                                 "`X-Delete-At`; in the future, within 100 years."},
    "Metadata": {"type": "object", "additionalProperties": {"type": "string"},
                 "description": "User metadata: names of 1-128 `A-Za-z0-9_-` (kept "
                                "lower-cased), text values, 8 KiB in all, 64 names "
                                "at most."},
    "DeleteRequest": {
        "type": "object",
        "required": ["paths"],
        "properties": {"paths": {"type": "array", "minItems": 1, "maxItems": 1000,
                                 "items": {"type": "string"},
                                 "description": "Objects to delete, each judged alone."}},
    },
    "DeleteResult": {
        "type": "object",
        "required": ["deleted", "not_found", "errors"],
        "properties": {
            "deleted": {"type": "array", "items": {"type": "string"}},
            "not_found": {"type": "array", "items": {"type": "string"}},
            "errors": {"type": "array", "items": {
                "type": "object", "required": ["path", "code", "message"],
                "properties": {"path": {"type": "string"}, "code": {"type": "string"},
                               "message": {"type": "string"}}},
                "description": "Paths refused (`forbidden`, `unauthorized`, `invalid_path`, "
                               "`is_directory`...) or failed (`backend_unavailable`...), "
                               "with the code and message a DELETE of it alone would get."},
        },
    },
    "ObjectPath": {"type": "string", "minLength": 1, "maxLength": MAX_PATH_BYTES,
                   "pattern": PATH_PATTERN, "description": PATH_RULES},
}

# -- headers ----------------------------------------------------------------

HEADERS = {
    "Location": {"description": "The new object's URL path (`/v1/objects/` and the path, "
                             "percent-encoded).", "schema": {"type": "string"}},
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
    **{name: {"description": "As stored with the object.", "schema": {"type": "string"}}
       for name in STORED_HEADERS},
    "X-Timestamp": {"description": "Unix time of the last write with its fraction, as "
                                   "`ctime` in the object's JSON (Swift's header).",
                    "schema": {"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?(e[+-]?[0-9]+)?$"}},
    "X-Delete-At": {"description": "Unix time at which the object expires.",
                    "schema": {"type": "integer"}},
    "X-Request-Id": {"description": "The client's `X-Request-Id` if short and plain, else "
                                    "a new one; also in the access log.",
                     "schema": {"type": "string"}},
}


def response_headers(*names: str, required: tuple[str, ...] = ()) -> dict:
    """Response headers by name; X-Request-Id goes on every answer."""
    out = {}
    for name in (*names, "X-Request-Id"):
        shared = ref("headers", name)
        out[name] = {**HEADERS[name], "required": True} if name in required else shared
    return out


# -- responses --------------------------------------------------------------

#: Status -> the error codes it carries (from the vocabulary), each with its
#: meaning; an operation lists the statuses it can answer.
def _error_description(status: int) -> str:
    return " ".join(f"`{entry.code}`: {entry.meaning}." for entry in VOCABULARY
                    if entry.status == status)


_ERROR_HEADERS = {401: ("WWW-Authenticate",), 416: ("Content-Range",)}


def error_responses(*statuses: int, body: bool = True,
                     notes: dict[int, str] | None = None) -> dict:
    """Error responses; ``body=False`` for HEAD, whose answers have none.

    401, 403 and 500 go on every operation that checks access; pass them
    explicitly. The body's ``error.status`` repeats the HTTP status.
    """
    out = {}
    for status in statuses:
        if not codes_for(status):
            raise KeyError(f"no error code for status {status} in the vocabulary")
        description = _error_description(status)
        if notes and status in notes:
            description += " " + notes[status]
        names = _ERROR_HEADERS.get(status, ())
        response: dict = {"description": description,
                          "headers": response_headers(*names, required=names)}
        if body:
            response["content"] = {"application/json": {"schema": {"allOf": [
                ref("schemas", "Error"),
                {"properties": {"error": {"properties": {"status": {"enum": [status]}}}}},
            ]}}}
        out[str(status)] = response
    return out


def json_response(description: str, schema: dict, *header_names: str,
                   required: tuple[str, ...] = (), links: dict | None = None) -> dict:
    response = {"description": description,
                "headers": response_headers(*header_names, required=required),
                "content": {"application/json": {"schema": schema}}}
    if links:
        response["links"] = links
    return response
