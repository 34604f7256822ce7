"""Path validation: the single gate every driver relies on."""

import time
import unicodedata

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


# -- Unicode: one spelling per name, no reordered display ---------------------------

NFD_NAMES = {
    "e + combining acute": "cafe\u0301.txt",
    "u + combining diaeresis in a directory": "mu\u0308nchen/x",
    "hangul jamo": "\u1112\u1161\u11ab",
    "in a later segment": "ok/cafe\u0301",
}


@pytest.mark.parametrize("path", NFD_NAMES.values(), ids=NFD_NAMES.keys())
def test_names_not_in_nfc_are_refused_with_a_hint(path):
    with pytest.raises(InvalidPath, match="NFC"):
        validate_path(path)


@pytest.mark.parametrize("path", [
    unicodedata.normalize("NFC", name) for name in NFD_NAMES.values()
] + ["\u00c5ngstr\u00f6m", "\u65e5\u672c/\u30d5\u30a1\u30a4\u30eb"])
def test_nfc_names_pass_unchanged(path):
    assert validate_path(path) == path


def test_compatibility_forms_that_nfc_keeps_are_accepted():
    """NFC (not NFKC): ligatures and full-width letters are names of their own."""
    for path in ("\ufb01le", "\uff21"):
        assert validate_path(path) == path


BIDI_CONTROLS = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067",
                 "\u2068", "\u2069", "\u200e", "\u200f", "\u061c"]


@pytest.mark.parametrize("control", BIDI_CONTROLS, ids=[f"U+{ord(c):04X}" for c in BIDI_CONTROLS])
def test_bidirectional_controls_are_refused(control):
    for path in (f"invoice{control}fdp.exe", f"a/{control}b", control):
        with pytest.raises(InvalidPath, match="bidirectional"):
            validate_path(path)
    with pytest.raises(InvalidPath):
        validate_dir(f"dir{control}/")


def test_right_to_left_text_itself_is_accepted():
    """Hebrew and Arabic names are fine; only the invisible controls are refused."""
    for path in ("\u05e9\u05dc\u05d5\u05dd.txt", "\u0645\u0631\u062d\u0628\u0627/a"):
        assert validate_path(path) == path


@given(st.text(max_size=60))
def test_every_accepted_path_is_nfc_without_bidi_controls(text):
    try:
        validate_path(text)
    except InvalidPath:
        return
    assert unicodedata.is_normalized("NFC", text)
    assert not set(text) & set(BIDI_CONTROLS)


def test_a_long_path_is_checked_in_linear_time():
    path = "/".join(["e\u0301" * 80] * 4)  # NFD: must be refused, and quickly
    started = time.perf_counter()
    for _ in range(100):
        with pytest.raises(InvalidPath):
            validate_path(path)
    assert time.perf_counter() - started < 0.5
