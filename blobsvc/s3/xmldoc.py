"""XML both ways: request bodies parsed safely, answers built and sent.

A request body is a client's document to distrust: it is read only up to
a size cap whatever the client declares (see
:meth:`blobsvc.s3.access.S3Access.read_document`), and parsed by
defusedxml with every DTD, entity and external reference refused, so a
billion-laughs body or an external entity costs nothing and reaches
nothing. Answers are built with ElementTree, which escapes every text it
is given.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from typing import Iterable
from xml.etree.ElementTree import Element, SubElement

import defusedxml
import defusedxml.ElementTree as SafeElementTree

from blobsvc.http import exchange
from blobsvc.s3.errors import S3Error

#: S3's namespace on every answer document.
NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"

#: A DeleteObjects body names at most 1000 keys of at most 1024 bytes each,
#: which, escaped and wrapped, stays well under this.
MAX_XML_BODY = 2 * 1024 * 1024


def parse_xml(raw: bytes) -> Element:
    """A request body as an XML element tree; MalformedXML when it is not
    plain XML (a DTD, an entity, an external reference, or not well-formed)."""
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
    """A child element; ``text`` as given (bool as S3 spells it), but for
    characters XML 1.0 cannot hold at all."""
    child = SubElement(parent, tag)
    if isinstance(text, bool):
        child.text = "true" if text else "false"
    elif text is not None:
        child.text = xml_text(str(text))
    return child


#: Characters no XML 1.0 document may contain, even escaped.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: str) -> str:
    """``text`` with every character XML cannot hold written as ``\\xNN``
    (or ``\\uNNNN``): a client's path in an error message (``%01``, a lone
    surrogate) must not make the document unreadable."""
    return _NOT_XML.sub(lambda match: _escaped(match.group()), text)


def _escaped(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


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
