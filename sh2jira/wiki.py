"""Jira wiki markup for text we do not control: escape it so it renders literally, link only what is safe.

Finding text comes from many products, third parties included. Jira REST v2 renders descriptions and
comments as wiki markup (Data Center with atlassian-renderer, Cloud by converting to ADF), so unescaped text
could mention users, embed images, run macros, fake headings or break our tables. `escape` makes text inert
for both.

How it neutralises (the rules both renderers share):
- The characters Jira treats as escapable (``! # % ( ) * + - ? @ [ ] ^ _ { | } ~``) get a backslash. That
  covers effects, lists, tables, links, mentions, images, macros, monospace and the ``(x)``/``:)`` emoticons.
- A literal backslash becomes ``\\`` + WORD JOINER (U+2060), so it can neither escape the next character nor
  form ``\\\\`` (a forced line break that would also void the escape after it).
- Constructs made of letters get an invisible WORD JOINER inside them, which renders as nothing and keeps
  the visible text identical: before ``://`` of any scheme, after ``mailto``/``file``/... before ``:``,
  inside ``www.``, after ``&`` of an entity (``&amp;`` shows literally), inside the ``:P``/``:D`` emoticons,
  and before ``h1.``-``h6.`` and ``bq.`` at a line start. Copying such text keeps the joiner; that is the
  price of an identical look (a backslash would show, and an entity only renders on Data Center).
- Newlines stay newlines (CR LF, CR, U+2028 and friends become LF); other control characters, lone
  surrogates, bidi overrides and zero-width spaces are removed (they spoof what a reader sees).

Worst case `escape` at most doubles the length (in UTF-16 units, which is how Jira counts): every character
becomes at most two, and a joiner only follows or precedes a character that did not grow.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote, urlsplit

WORD_JOINER = "\u2060"
ESCAPABLE = frozenset("!#%()*+-?@[]^_{|}~")
MAX_ESCAPE_FACTOR = 2

# Invisible characters that reorder or hide text: bidi embeddings/overrides/isolates and marks, zero-width
# space, word joiner, invisible operators, BOM. ZWJ/ZWNJ stay (emoji sequences and many scripts need them).
_INVISIBLE = frozenset(
    "\u061c\u180e\u200b\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
    "\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069\ufeff"
)
_NEWLINES = re.compile("\r\n|[\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
# Control characters (category Cc) but LF and TAB, surrogates (Cs), and the invisible characters.
_DROP = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff" + "".join(sorted(_INVISIBLE)) + "]")
_ESCAPES = str.maketrans({**{c: "\\" + c for c in ESCAPABLE}, "\\": "\\" + WORD_JOINER})

# Where a joiner goes (see the module docstring); each yields the index the joiner is inserted before.
_SCHEME_SEP = re.compile(r"://")
_BARE_SCHEME = re.compile(r"(?i)(?:mailto|file|news|nntp|irc|tel|callto|sms|data|javascript|vbscript)(?=:)")
_WWW = re.compile(r"(?i)www(?=\.)")
_ENTITY = re.compile(r"&(?=#?[0-9A-Za-z]+;)")
# An emoticon only counts when no letter or digit follows (atlassian-renderer's VALID_END; a "{" there is
# escaped by us, so it no longer protects).
_EMOTICON = re.compile(r"[:;](?=[PpDd](?![^\W_]))")
_LINE_START = re.compile(r"(?im)^[^\S\n]*(?=(?:h[1-6]|bq)\.)")

_COMBINING_CATEGORIES = ("Mn", "Mc", "Me")
_ZWJ = "\u200d"
_WORD_BOUNDARY_REACH = 20

_URL_SAFE = "-._~:/?#@!$&'()*+,;="
_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_MAX_URL = 2048


def jira_len(text: str) -> int:
    """Length as Jira (Java) counts it: UTF-16 code units, so a non-BMP emoji counts 2."""
    return len(text) if text.isascii() else len(text.encode("utf-16-le", "surrogatepass")) // 2


def clean(text: str) -> str:
    """Normalise newlines to LF and drop control characters (except LF and TAB), lone surrogates and
    invisible bidi / zero-width characters (one regex pass: this runs on every piece of finding text)."""
    return _DROP.sub("", _NEWLINES.sub("\n", text))


def one_line(text: str) -> str:
    """`clean` text with every run of whitespace (newlines included) collapsed to one space."""
    return " ".join(clean(text).split())


def _joiner_positions(text: str) -> set[int]:
    positions: set[int] = set()
    if ":" in text:  # each scan only where its construct can occur: most text has none of them
        positions.update(m.start() for m in _SCHEME_SEP.finditer(text))
        positions.update(m.end() for m in _BARE_SCHEME.finditer(text))
    if "." in text:
        positions.update(m.end() for m in _WWW.finditer(text))
        positions.update(m.end() for m in _LINE_START.finditer(text))
    if "&" in text:
        positions.update(m.start() + 1 for m in _ENTITY.finditer(text))
    if ":" in text or ";" in text:
        positions.update(m.start() + 1 for m in _EMOTICON.finditer(text))
    return positions


def escape(text: str) -> str:
    """Text that Jira renders literally (see the module docstring); at most doubles in length."""
    text = clean(text)
    parts: list[str] = []
    prev = 0
    for cut in sorted(p for p in _joiner_positions(text) if p < len(text)):
        parts += [text[prev:cut].translate(_ESCAPES), WORD_JOINER]
        prev = cut
    parts.append(text[prev:].translate(_ESCAPES))
    return "".join(parts)


def escape_cell(text: str) -> str:
    """`escape` for a table cell: one line (a newline would end the row), never empty (``||`` starts a
    header cell)."""
    return escape(one_line(text)) or "\u2014"


def safe_url(url: str) -> str | None:
    """The URL percent-encoded for use inside ``[text|url]``, or None unless it is http(s) to a sane host.

    Sane: a DNS name of at least two labels ending in a letter label (no IP literals, no ``user@`` tricks,
    no non-ASCII host), optional numeric port, at most 2,048 characters once encoded.
    """
    candidate = clean(url).strip()
    try:
        parts = urlsplit(candidate)
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname or ""
    if parts.scheme.lower() not in ("http", "https") or "@" in parts.netloc or port == 0:
        return None
    labels = host.split(".")
    if (len(labels) < 2 or not all(_HOST_LABEL.match(label) for label in labels)
            or not (labels[-1].isalpha() or labels[-1].startswith("xn--"))):
        return None
    encoded = quote(candidate, safe=_URL_SAFE + "%")
    # A "%" that does not start an escape sequence is itself encoded, so the URL stays well-formed.
    encoded = re.sub(r"%(?![0-9A-Fa-f]{2})", "%25", encoded)
    return encoded if len(encoded) <= _MAX_URL else None


def link(text: str, url: str) -> str:
    """``[text|url]`` when `safe_url` accepts the URL, else the escaped text and URL as plain text.

    In the link text ``|`` becomes ``¦`` and ``[``/``]`` become ``(``/``)``: a link body is split on its
    first ``|`` and ended by its first ``]`` by some renderers, escaped or not.
    """
    label = one_line(text)
    target = safe_url(url)
    if target is None:
        shown = one_line(url)
        return escape(shown if not label or label == shown else f"{label} ({shown})")
    label = label.replace("|", "\u00a6").replace("[", "(").replace("]", ")")
    return f"[{escape(label or target)}|{target}]"


def _units(text: str) -> list[tuple[int, int]]:
    """(start, end) index pairs of pieces that must not be split: a backslash with the character it
    escapes, a character with its combining marks, and characters joined by ZWJ."""
    units: list[tuple[int, int]] = []
    i, n = 0, len(text)
    while i < n:
        j = i + 2 if text[i] == "\\" and i + 1 < n else i + 1
        while j < n and (unicodedata.category(text[j]) in _COMBINING_CATEGORIES or text[j] == _ZWJ
                         or text[j - 1] == _ZWJ or "\ufe00" <= text[j] <= "\ufe0f"
                         or "\U0001f3fb" <= text[j] <= "\U0001f3ff"):
            j += 1
        units.append((i, j))
        i = j
    return units


def truncate(text: str, limit: int, marker: str = "\u2026") -> str:
    """`text` cut to at most `limit` UTF-16 units including `marker`.

    Never splits an escape sequence (``\\*``), a surrogate pair, or a character from its combining marks;
    prefers the last whitespace within 20 units of the cut.
    """
    if jira_len(text) <= limit:
        return text
    if limit <= 0:
        return ""
    if jira_len(marker) > limit:
        marker = ""
    budget = limit - jira_len(marker)
    units = _units(text)
    kept, used = 0, 0
    for start, end in units:
        size = jira_len(text[start:end])
        if used + size > budget:
            break
        used += size
        kept += 1
    reach = 0
    for k in range(kept - 1, 0, -1):
        start, end = units[k]
        reach += jira_len(text[start:end])
        if reach > _WORD_BOUNDARY_REACH:
            break
        if text[start:end].isspace():
            kept = k
            break
    while kept > 0 and text[units[kept - 1][0]:units[kept - 1][1]].isspace():
        kept -= 1
    cut = units[kept - 1][1] if kept else 0
    return text[:cut] + marker
