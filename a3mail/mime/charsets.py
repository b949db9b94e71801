"""Charset names to Python codecs, and tolerant decoding of bytes to ``str``.

Every function here returns a ``str`` that is safe to store in PostgreSQL
``text``/``jsonb``: no NUL characters and no lone surrogates.
"""

from __future__ import annotations

import codecs
import re

from a3mail.caches import cached

#: Charset labels mapped to the Python codec we decode them with (supersets
#: where mail software commonly sends the superset under the subset's name).
_ALIASES: dict[str, str] = {
    "gb2312": "gb18030",
    "gb_2312-80": "gb18030",
    "csgb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "cp936": "gb18030",
    "ms936": "gb18030",
    "windows-936": "gb18030",
    "euc-cn": "gb18030",
    "chinese": "gb18030",
    "hz-gb-2312": "hz",
    "big5": "big5hkscs",
    "x-big5": "big5hkscs",
    "big5-hkscs": "big5hkscs",
    "cn-big5": "big5hkscs",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601-1989": "cp949",
    "ks_c_5601": "cp949",
    "ksc5601": "cp949",
    "ksc_5601": "cp949",
    "csksc56011987": "cp949",
    "korean": "cp949",
    "euc-kr": "cp949",
    "windows-949": "cp949",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "ms_kanji": "cp932",
    "csshiftjis": "cp932",
    "windows-31j": "cp932",
    "iso-2022-jp": "iso2022_jp_2",
    "csiso2022jp": "iso2022_jp_2",
    "iso-2022-jp-1": "iso2022_jp_2",
    "euc-jp": "euc_jp",
    "x-euc-jp": "euc_jp",
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "iso_8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "l1": "cp1252",
    "iso-8859-8-i": "iso8859-8",
    "iso-8859-6-i": "iso8859-6",
    "windows-874": "cp874",
    "tis-620": "cp874",
    "x-mac-roman": "mac_roman",
    "macintosh": "mac_roman",
    "utf8": "utf-8",
    "unicode-1-1-utf-8": "utf-8",
    "x-unicode20utf8": "utf-8",
    "unicode-2-0-utf-8": "utf-8",
}

#: Labels for plain ASCII. Mail labelled ASCII often carries 8-bit text, so
#: these (and a missing charset) decode as UTF-8 if valid, else windows-1252.
_ASCII = frozenset(
    {"us-ascii", "ascii", "ansi_x3.4-1968", "iso646-us", "us", "646", "iso-ir-6", "cp367"}
)

#: Codecs that are text codecs to Python but make no sense for mail bodies.
_REFUSED = frozenset(
    {
        "undefined",
        "unicode-escape",
        "raw-unicode-escape",
        "unicode-internal",
        "idna",
        "punycode",
        "mbcs",
        "oem",
    }
)

_LABEL = re.compile(r"[A-Za-z0-9._:+\-]+")
_UNSAFE = re.compile("[\x00\ud800-\udfff]")


def clean(text: str) -> str:
    """Replace NUL and lone surrogates (which PostgreSQL rejects) with U+FFFD."""
    if _UNSAFE.search(text) is None:
        return text
    return _UNSAFE.sub("\ufffd", text)


def normalize_label(charset: str | None) -> str | None:
    """Return the lowercased charset label, or None when it is empty or garbage."""
    if not charset:
        return None
    m = _LABEL.search(charset.strip().strip("\"'"))
    return m.group(0).lower() if m else None


@cached("charset_codecs", 256)
def codec_for(charset: str | None) -> str | None:
    """Map a charset label to a Python codec name.

    Returns None for ASCII-family labels and missing charsets (decode as UTF-8
    with a windows-1252 fallback) and ``"utf-8"`` for unknown labels.
    """
    label = normalize_label(charset)
    if label is None or label in _ASCII:
        return None
    name = _ALIASES.get(label, label)
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):
        return "utf-8"
    if not getattr(info, "_is_text_encoding", True) or info.name in _REFUSED:
        return "utf-8"
    if info.name == "ascii":
        return None
    return info.name


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Decode ``data`` in ``charset``; never raises, replaces undecodable bytes."""
    codec = codec_for(charset)
    if codec is None:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("cp1252", "replace")
    else:
        try:
            text = data.decode(codec, "replace")
        except Exception:
            text = data.decode("utf-8", "replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    return clean(text)
