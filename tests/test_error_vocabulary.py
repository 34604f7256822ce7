"""One error vocabulary: the code, the README table and /openapi.json agree.

blobsvc.http.errors.VOCABULARY names every error code with its status; the
storage errors, the HTTP server's own refusals, the OpenAPI document and the
README's table are each held to it here, so none can drift alone.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from blobsvc.http.errors import BY_CODE, CODE_BY_STATUS, VOCABULARY, ApiError, status_of
from blobsvc.native.openapi import SPEC
from blobsvc.storage import errors

README = Path(__file__).resolve().parent.parent / "README.rst"
_ROW = re.compile(r"^(\d{3})\s+``([a-z_]+)``", re.MULTILINE)


def _storage_error_classes() -> list[type[errors.StorageError]]:
    found, todo = [], [errors.StorageError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_codes_are_unique_and_each_has_one_status():
    assert len(BY_CODE) == len(VOCABULARY)


@pytest.mark.parametrize("cls", _storage_error_classes(), ids=lambda cls: cls.__name__)
def test_every_storage_error_code_is_in_the_vocabulary(cls):
    assert cls.code in BY_CODE, f"{cls.__name__}.code {cls.code!r} is not in the vocabulary"
    assert status_of(cls("x")) == BY_CODE[cls.code].status


def test_the_readme_table_lists_exactly_the_vocabulary():
    text = README.read_text(encoding="utf-8")
    table = text[text.index("Error codes ("):text.index("\nPaths\n")]
    rows = set(_ROW.findall(table))
    assert {(int(s), c) for s, c in rows} == {(e.status, e.code) for e in VOCABULARY}


def test_every_error_code_in_the_openapi_document_is_in_the_vocabulary():
    document = json.dumps(SPEC)
    mentioned = set(re.findall(r"`([a-z]+(?:_[a-z]+)+|[a-z]+)`:", document))
    assert mentioned, "the OpenAPI error descriptions name no codes"
    assert mentioned <= set(BY_CODE)
    for path_item in SPEC["paths"].values():
        for operation in path_item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for status in operation["responses"]:
                if status.isdigit() and int(status) >= 400:
                    assert int(status) in CODE_BY_STATUS, (status, operation.get("operationId"))


@pytest.mark.parametrize("status", [400, 404, 405, 408, 411, 413, 414, 417, 431, 500, 501, 503, 505])
def test_every_status_the_server_answers_by_itself_has_a_code(status):
    assert BY_CODE[CODE_BY_STATUS[status]].status == status


def test_an_api_error_cannot_pair_a_code_with_another_status():
    with pytest.raises(ValueError):
        ApiError(404, "x", code="conflict")
