"""Strings read from a file stay text wherever they are shown.

Every string that comes from a photo file (EXIF, IPTC, XMP, Content Credentials, the file's own
name) is data written by whoever made the file, so it is escaped for the place it is shown:
:func:`html_text` for the report and ``gr.HTML``, :func:`markdown_text` for the app's Markdown
panels, :func:`csv_text` for ``results.csv`` and :func:`terminal_text` for the command line.
:func:`clean_text` is applied once, where a string is read: it removes what no place should
receive (control characters, which carry terminal escape sequences, and the bidirectional
overrides that reorder what a reader sees) and bounds the length.
"""

from __future__ import annotations

import html
import re

#: The longest string kept from a file; longer ones are cut with an ellipsis (an XMP field can
#: hold megabytes, and nothing a person reads needs that).
MAX_TEXT_CHARS = 2000
#: C0 and C1 control characters (tab and newline included: a field is shown on one line), DEL,
#: and the Unicode bidirectional controls (U+202A-U+202E, U+2066-U+2069, U+200E/U+200F, U+061C).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")
#: ASCII punctuation: each may be backslash-escaped in CommonMark, which makes it literal text
#: (no tag, image, link, autolink, emphasis, table or maths can start from an escaped character).
_MARKDOWN_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")
#: A spreadsheet reads a cell starting with one of these as a formula (OWASP "CSV injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def clean_text(value: object, limit: int = MAX_TEXT_CHARS) -> str:
    """``value`` as one line of plain text: bytes decoded as UTF-8 (invalid bytes replaced),
    control and bidirectional-override characters replaced by a space, surrounding space
    stripped, cut to ``limit`` characters (with "…")."""
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", "replace")
    text = _UNSAFE.sub(" ", str(value)).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def html_text(value: object) -> str:
    """Text for an HTML element's content or a quoted attribute value: ``& < > " '`` escaped."""
    return html.escape(clean_text(value), quote=True)


def markdown_text(value: object) -> str:
    """Text for a Markdown document (the app's panels): every ASCII punctuation character
    backslash-escaped, so ``<img src=...>``, ``![](...)``, ``[a](...)``, ``http://...`` and
    ``www.``-autolinks, emphasis and maths all show as the characters they are."""
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", clean_text(value))


def csv_text(value: object) -> object:
    """A ``results.csv`` cell: a string that a spreadsheet would run as a formula gets a leading
    apostrophe (shown as text by Excel, LibreOffice and Google Sheets); other values unchanged."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def terminal_text(value: object) -> str:
    """Text for a terminal line: no escape sequence or other control character reaches it."""
    return _UNSAFE.sub("?", str(value))
