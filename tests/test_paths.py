"""Path validation: the single gate every driver relies on."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blobsvc.storage.errors import InvalidPath
from blobsvc.storage.paths import validate_dir, validate_path

BAD_PATHS = [
    "", "/", "/a", "a/", "a//b", ".", "..", "a/./b", "a/../b", "../a", "a/..",
    "a\x00b", "a\nb", "a\x7fb", "a\\b", "..\\x", "x" * 256, "a/" + "y" * 256,
    "/".join(["z" * 200] * 6), ".blobsvc", ".blobsvc/tmp/x",
]


@pytest.mark.parametrize("path", BAD_PATHS)
def test_bad_paths_are_refused(path):
    with pytest.raises(InvalidPath):
        validate_path(path)


@pytest.mark.parametrize("path", [
    "a", "a/b/c", "x" * 255, "é/ü.bin", "%2e%2e", "...", "a..b", ".hidden", "a/.blobsvc",
    "/".join(["z" * 200] * 5),
])
def test_good_paths_pass_unchanged(path):
    assert validate_path(path) == path


def test_directories_drop_one_trailing_slash():
    assert validate_dir("") == ""
    assert validate_dir("a/b/") == "a/b"
    with pytest.raises(InvalidPath):
        validate_dir("a//")


segment = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20)


@given(st.lists(segment, min_size=1, max_size=6))
def test_accepted_paths_never_escape_or_hide(segments):
    path = "/".join(segments)
    try:
        validate_path(path)
    except InvalidPath:
        return
    parts = path.split("/")
    assert ".." not in parts and "." not in parts and "" not in parts
    assert not any(ord(c) < 32 or c in "\x7f\\" for c in path)
    assert parts[0] != ".blobsvc"
    assert len(path.encode()) <= 1024


@given(st.text(max_size=300))
def test_arbitrary_text_is_accepted_or_refused_cleanly(text):
    try:
        assert validate_path(text) == text
    except InvalidPath as exc:
        assert exc.code == "invalid_path"
