"""A listing as a plain HTML page, for a browser that asks for one.

Why here and so plain: a person with a browser should be able to walk the
store without a client, and a page that needs no script has nothing for a
hostile object name to run in. Every name, path and value is escaped, every
link percent-encoded, and the page is sent with a policy that forbids
scripts anyway, so a name that slipped through escaping could still not run.
"""

from __future__ import annotations

import html
from datetime import datetime, timezone
from typing import Mapping, Sequence
from urllib.parse import quote, urlencode

from blobsvc.storage import ObjectInfo

OBJECTS_URL = "/v1/objects/"

#: No script, no plugin, no frame; the page's own small style only.
CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'"

_STYLE = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
          "td,th{padding:.2em 1em;text-align:left}td.size{text-align:right}")

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def wants_html(accept: str | None) -> bool:
    """Whether the client prefers HTML to JSON (a browser's Accept).

    curl sends ``*/*`` and API clients JSON or nothing: they get JSON. HTML
    only when ``text/html`` is named, with a weight above JSON's.
    """
    if not accept:
        return False
    weights = _weights(accept)
    html_q = weights.get("text/html", 0.0)
    return html_q > 0 and html_q > weights.get("application/json", 0.0)


def _weights(accept: str) -> dict[str, float]:
    weights: dict[str, float] = {}
    for part in accept.split(","):
        media, *params = (piece.strip() for piece in part.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        weights[media.lower()] = max(q, weights.get(media.lower(), 0.0))
    return weights


def render(directory: str, entries: Sequence[ObjectInfo], next_marker: str | None,
           query: Mapping[str, str]) -> bytes:
    """The page of ``directory`` (``""``: the root); ``query`` is kept on the
    next page's link (limit, prefix, recursive) beside its marker."""
    title = f"/{directory}/" if directory else "/"
    rows = [_row(directory, entry) for entry in entries]
    if not rows:
        rows.append('<tr><td colspan="3">(empty)</td></tr>')
    parts = [
        "<!DOCTYPE html>",
        '<html><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_breadcrumbs(directory)}</h1>",
        "<table><thead><tr><th>Name</th><th>Size</th><th>Modified (UTC)</th></tr></thead>",
        "<tbody>", *rows, "</tbody></table>",
    ]
    if next_marker is not None:
        following = urlencode({**query, "marker": next_marker})
        parts.append(f'<p><a rel="next" href="?{html.escape(following)}">Next page</a></p>')
    parts.append("</body></html>\n")
    return "\n".join(parts).encode("utf-8")


def _breadcrumbs(directory: str) -> str:
    crumbs = [f'<a href="{OBJECTS_URL}">/</a>']
    segments = directory.split("/") if directory else []
    for index, segment in enumerate(segments):
        href = OBJECTS_URL + quote("/".join(segments[:index + 1]), safe="/") + "/"
        crumbs.append(f'<a href="{html.escape(href)}">{html.escape(segment)}</a>/')
    return " ".join(crumbs)


def _row(directory: str, entry: ObjectInfo) -> str:
    below = f"{directory}/" if directory else ""
    shown = entry.path[len(below):] if entry.path.startswith(below) else entry.path
    href = OBJECTS_URL + quote(entry.path, safe="/") + ("/" if entry.isdir else "")
    name = html.escape(shown + ("/" if entry.isdir else ""))
    size = "" if entry.isdir or entry.size is None else human_size(entry.size)
    when = "" if entry.ctime is None else datetime.fromtimestamp(
        entry.ctime, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    return (f'<tr><td><a href="{html.escape(href)}">{name}</a></td>'
            f'<td class="size">{size}</td><td>{when}</td></tr>')


def human_size(size: int) -> str:
    """``1536`` -> ``1.5 KiB``; bytes as a whole number."""
    value = float(size)
    for unit in _UNITS:
        if value < 1024 or unit == _UNITS[-1]:
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
