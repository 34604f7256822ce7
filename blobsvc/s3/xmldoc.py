"""XML both ways: request bodies parsed safely, answers built and sent.

A request body is a client's document to distrust: it is read only up to
a size cap whatever the client declares, and parsed by defusedxml with
every DTD, entity and external reference refused, so a billion-laughs
body or an external entity costs nothing and reaches nothing. Answers are
built with ElementTree, which escapes every text it is given.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import xml.etree.ElementTree as ElementTree
from typing import Iterable
from xml.etree.ElementTree import Element, SubElement

import defusedxml
import defusedxml.ElementTree as SafeElementTree

from blobsvc.http import exchange
from blobsvc.http.bodies import read_capped
from blobsvc.s3.errors import S3Error

#: S3's namespace on every answer document.
NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"

#: A DeleteObjects body names at most 1000 keys of at most 1024 bytes each,
#: which, escaped and wrapped, stays well under this.
MAX_XML_BODY = 2 * 1024 * 1024


def read_xml_body(limit: int = MAX_XML_BODY) -> Element:
    """The request body as an XML element tree; MalformedXML when it is not
    plain XML under ``limit`` bytes, BadDigest when it does not match the
    Content-MD5 sent with it."""
    raw = read_capped(limit, S3Error("MalformedXML", f"the XML body is larger than {limit} bytes"))
    expected = exchange.request().headers.get("Content-MD5")
    if expected is not None:
        actual = base64.b64encode(hashlib.md5(raw).digest()).decode("ascii")
        if not hmac.compare_digest(actual, expected.strip()):
            raise S3Error("BadDigest", "the body does not match its Content-MD5")
    try:
        root: Element = SafeElementTree.fromstring(raw, forbid_dtd=True, forbid_entities=True,
                                                   forbid_external=True)
    except defusedxml.DefusedXmlException:
        raise S3Error("MalformedXML", "the XML body may not hold a DTD or entities") from None
    except (ElementTree.ParseError, ValueError, RecursionError):
        raise S3Error("MalformedXML", "the XML body is not well-formed") from None
    return root


def local_name(element: Element) -> str:
    """An element's tag without its namespace (clients send S3's or none)."""
    return element.tag.rsplit("}", 1)[-1]


def children(element: Element, name: str) -> list[Element]:
    return [child for child in element if local_name(child) == name]


def child_text(element: Element, name: str) -> str | None:
    found = children(element, name)
    if len(found) > 1:
        raise S3Error("MalformedXML", f"<{name}> is given more than once")
    return None if not found else (found[0].text or "")


def document(tag: str) -> Element:
    """The root of an answer, in S3's namespace."""
    return Element(tag, xmlns=NAMESPACE)


def add(parent: Element, tag: str, text: object = None) -> Element:
    """A child element; ``text`` as given (bool as S3 spells it)."""
    child = SubElement(parent, tag)
    if isinstance(text, bool):
        child.text = "true" if text else "false"
    elif text is not None:
        child.text = str(text)
    return child


def add_all(parent: Element, fields: Iterable[tuple[str, object]]) -> None:
    for tag, text in fields:
        add(parent, tag, text)


_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'


def to_bytes(root: Element) -> bytes:
    return _DECLARATION + ElementTree.tostring(root, encoding="unicode").encode("utf-8")


def send_xml(root: Element, status: int = 200) -> bytes:
    response = exchange.response()
    response.status = status
    response.headers["Content-Type"] = "application/xml"
    return to_bytes(root)
