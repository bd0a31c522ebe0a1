"""sh2jira.wiki: hostile text renders literally, links go only to sane http(s) URLs, cuts keep escapes whole.

The detector below is written from Jira's renderer rules, independently of wiki.py: a markup character is
inert only right after a backslash that is not itself escaped; ``\\\\`` is a forced line break; schemes,
``www.``, entities and ``:P``-style emoticons must not appear contiguous; no line may start a block.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sh2jira import wiki

PAYLOAD_FILE = Path(__file__).resolve().parent / "data" / "hostile_payloads.json"
MARKUP = "!#%()*+-?@[]^_{|}~"
WJ = "\u2060"

_DETECTORS = {
    "forced line break / voided escape": re.compile(r"\\\\"),
    "dangling backslash": re.compile(r"\\\Z"),
    "unescaped markup character": re.compile(r"(?<!\\)[!#%()*+\-?@\[\]^_{|}~]"),
    "autolinked scheme": re.compile(r"(?i)[a-z0-9+.\-]://"),
    "autolinked bare scheme": re.compile(r"(?i)(?:mailto|file|javascript|data|news|irc|tel):"),
    "autolinked www": re.compile(r"(?i)www\."),
    "html entity": re.compile(r"(?i)&#?[0-9a-z]+;"),
    "emoticon": re.compile(r"[:;][PpDd](?![^\W_])"),
    "block construct at line start": re.compile(r"(?im)^[^\S\n]*(?:h[1-6]|bq)\."),
    "control, bidi or zero-width character": re.compile(
        "[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff\u2028\u2029"
        "\ud800-\udfff]"),
}

# Payloads with no markup at all in their raw form (so the detector is not expected to fire on them raw).
BENIGN_RAW = {"long-text"}


def load_payloads() -> list[tuple[str, str]]:
    """(name, text) of every hostile payload, `repeat` applied."""
    doc = json.loads(PAYLOAD_FILE.read_text(encoding="utf-8"))
    return [(p["name"], p["text"] * p.get("repeat", 1)) for p in doc["payloads"]]


PAYLOADS = load_payloads()


def active_markup(text: str) -> list[str]:
    """Every construct in `text` that Jira would still treat as markup (empty when the text is inert)."""
    found = []
    for what, pattern in _DETECTORS.items():
        for m in pattern.finditer(text):
            found.append(f"{what}: {text[max(0, m.start() - 10):m.end() + 10]!r}")
    return found


def visible(text: str) -> str:
    """What a reader sees: escapes resolved, word joiners invisible."""
    out, i = [], 0
    while i < len(text):
        c = text[i]
        nxt = text[i + 1] if i + 1 < len(text) else ""
        if c == "\\" and nxt == WJ:
            out.append("\\")
            i += 2
        elif c == "\\" and nxt and nxt in MARKUP:
            out.append(nxt)
            i += 2
        else:
            if c != WJ:
                out.append(c)
            i += 1
    return "".join(out)


def test_corpus_is_big_and_varied() -> None:
    assert len(PAYLOADS) >= 30
    assert len({name for name, _ in PAYLOADS}) == len(PAYLOADS)
    assert max(len(text) for _, text in PAYLOADS) > 50_000


@pytest.mark.parametrize(("name", "text"), PAYLOADS, ids=[name for name, _ in PAYLOADS])
def test_detector_sees_markup_in_raw_payload(name: str, text: str) -> None:
    if name in BENIGN_RAW:
        assert active_markup(text) == []
    else:
        assert active_markup(text), f"payload {name} is not hostile to the detector"


@pytest.mark.parametrize(("name", "text"), PAYLOADS, ids=[name for name, _ in PAYLOADS])
def test_escaped_payload_is_inert_and_reads_the_same(name: str, text: str) -> None:
    out = wiki.escape(text)
    assert active_markup(out) == []
    assert visible(out) == wiki.clean(text)
    assert wiki.jira_len(out) <= wiki.MAX_ESCAPE_FACTOR * wiki.jira_len(text)


@pytest.mark.parametrize(("raw", "expected"), [
    ("[~accountid:abc]", "\\[\\~accountid:abc\\]"),
    ("a\\b", "a\\" + WJ + "b"),
    ("\\\\[~x]", "\\" + WJ + "\\" + WJ + "\\[\\~x\\]"),
    ("see http://x.example", "see http" + WJ + "://x.example"),
    ("mailto:a", "mailto" + WJ + ":a"),
    ("www.x.example", "www" + WJ + ".x.example"),
    ("&amp;", "&" + WJ + "amp;"),
    ("ok :P", "ok :" + WJ + "P"),
    ("x\r\n h2. y", "x\n " + WJ + "h2. y"),
    ("bell\x07 tab\t", "bell tab\t"),
    ("::product/aws", "::product/aws"),
])
def test_escape_examples(raw: str, expected: str) -> None:
    assert wiki.escape(raw) == expected


_MARKUP_HEAVY = st.text(st.sampled_from(list(MARKUP + "\\:;/.&hHbBqQ1236 \n\r\twWpPdDx#\u2028\u200b")),
                        max_size=80)


@settings(max_examples=300, deadline=None)
@given(st.one_of(_MARKUP_HEAVY, st.text(max_size=80)))
def test_escape_property(text: str) -> None:
    out = wiki.escape(text)
    assert active_markup(out) == []
    assert visible(out) == wiki.clean(text)
    assert wiki.jira_len(out) <= 2 * wiki.jira_len(text)


def test_clean_removes_spoofing_characters_but_keeps_emoji_joiners() -> None:
    assert wiki.clean("a\u202eb\u200bc\ufeffd\x00e\ud83d") == "abcde"
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    assert wiki.clean(family) == family
    assert wiki.clean("a\r\nb\rc\u2028d") == "a\nb\nc\nd"


def test_jira_len_counts_utf16_units() -> None:
    assert wiki.jira_len("ab") == 2
    assert wiki.jira_len("\U0001f525") == 2


def test_escape_cell_is_one_line_and_never_empty() -> None:
    assert wiki.escape_cell("a\nb\r\n  c") == "a b c"
    assert wiki.escape_cell(" \n ") == "\u2014"
    assert wiki.escape_cell("x|y") == "x\\|y"


_LINK = re.compile(r"\[([^|\[\]]*)\|([^|\[\]\s]+)\]")


def test_link_to_sane_url() -> None:
    out = wiki.link("Guide", "https://docs.aws.amazon.com/securityhub/latest/userguide/x.html#s3-1")
    assert out == "[Guide|https://docs.aws.amazon.com/securityhub/latest/userguide/x.html#s3-1]"


def test_link_percent_encodes_breaking_characters() -> None:
    out = wiki.link("t", "https://ex.example/a b|c]d[e{f}\\g\x01h%zz%41")
    m = _LINK.fullmatch(out)
    assert m, out
    assert m.group(2) == "https://ex.example/a%20b%7Cc%5Dd%5Be%7Bf%7D%5Cgh%25zz%41"


def test_link_text_is_escaped_and_cannot_split_the_link() -> None:
    out = wiki.link("[~admin] *x* | http://evil.example", "https://ok.example/")
    m = _LINK.fullmatch(out)
    assert m, out
    assert active_markup(m.group(1)) == []
    assert m.group(2) == "https://ok.example/"


@pytest.mark.parametrize("url", [
    "javascript:alert(1)", "data:text/html,<b>x</b>", "ftp://files.example/x", "file:///etc/passwd",
    "mailto:a@b.example", "https://aws.amazon.com@evil.example/", "http://127.0.0.1/", "http://[::1]/",
    "https://localhost/", "https://ex_ample.com/", "https://-bad.example/", "https://b\u00fccher.example/",
    "https://ok.example:0/", "https://ok.example:99999/", "//ok.example/x", "https://ok.123/",
    "https://ok.example/" + "a" * 3000, "",
])
def test_link_refuses_unsafe_urls(url: str) -> None:
    out = wiki.link("Guide", url)
    assert not _LINK.search(out)
    assert active_markup(out) == []
    assert wiki.safe_url(url) is None


def test_link_accepts_ports_punycode_and_uppercase_scheme() -> None:
    assert wiki.safe_url("HTTPS://xn--bcher-kva.example:8443/p?q=1") == "HTTPS://xn--bcher-kva.example:8443/p?q=1"


def test_link_without_text_uses_the_url() -> None:
    out = wiki.link("", "https://ok.example/a_b")
    m = _LINK.fullmatch(out)
    assert m and visible(m.group(1)) == "https://ok.example/a_b"


def test_truncate_keeps_short_text_and_respects_limit() -> None:
    assert wiki.truncate("short", 10) == "short"
    assert wiki.truncate("hello wonderful world", 17) == "hello wonderful\u2026"
    assert wiki.truncate("abcdefghijklmnopqrstuvwxyz" * 3, 10) == "abcdefghi\u2026"
    assert wiki.truncate("abc", 0) == ""
    assert wiki.truncate("abcdef", 1) == "\u2026"


def test_truncate_never_splits_escapes_surrogates_or_clusters() -> None:
    escaped = wiki.escape("*" * 40)
    for limit in range(0, 30):
        out = wiki.truncate(escaped, limit)
        assert wiki.jira_len(out) <= limit
        assert active_markup(out) == [] if out else True
    emoji = "\U0001f600" * 5
    out = wiki.truncate(emoji, 4)
    assert out == "\U0001f600\u2026"
    out.encode("utf-16")
    family = "x\U0001f468\u200d\U0001f469\u200d\U0001f467y" + "z" * 20
    for limit in range(1, 12):
        kept = wiki.truncate(family, limit).rstrip("\u2026")
        assert kept in ("", "x") or kept.startswith(family[:6]), (limit, kept)


@settings(max_examples=200, deadline=None)
@given(st.one_of(_MARKUP_HEAVY, st.text(max_size=60)), st.integers(min_value=0, max_value=120))
def test_truncated_escaped_text_stays_inert(text: str, limit: int) -> None:
    out = wiki.truncate(wiki.escape(text), limit)
    assert wiki.jira_len(out) <= limit
    assert active_markup(out) == []
