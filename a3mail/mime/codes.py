"""Find the verification code (OTP) in a sign-up / log-in message.

A candidate is a run of 4-8 digits, or 4-8 upper-case letters and digits mixing
both. It scores by context: a code keyword just before it on the same line
(or on the line or two above), a keyword just after it, standing alone on its
line. Candidates that look like dates, years, times, phone numbers, prices,
order/tracking numbers, postcodes or that sit inside URLs/e-mail addresses are
rejected. The best candidate scoring at least :data:`THRESHOLD` wins.
"""

from __future__ import annotations

import bisect
import re

from .codewords import CONTEXT, DATE_WORDS, INTRO, NEGATIVE, NOUN, has_strong_words

#: Characters of each source that are looked at.
MAX_SCAN = 30_000
#: Minimum score for a candidate to be returned.
THRESHOLD = 6
#: How far (characters) around a candidate its context is looked for; a
#: "line" longer than this is cut to this window on each side.
WINDOW = 200

# A 4-8 character alphanumeric token with at least one digit (the lookahead lets the regex
# engine skip ordinary words, which are most of a message, without a Python-level check).
_CANDIDATE = re.compile(r"(?<![0-9A-Za-z])(?=[A-Za-z]{0,7}[0-9])[0-9A-Za-z]{4,8}(?![0-9A-Za-z])")
_URL = re.compile(r"(?:https?://|ftp://|www\.)\S*", re.IGNORECASE)
_EMAIL = re.compile(r"[\w.+%-]{1,64}@[\w-]+(?:\.[\w-]+)+")
_LEFT_REJECT = re.compile(
    r"(?:\d[.,:/\-\u2013]|[0-9A-Za-z]{2,}-|\d{3,} |\d\)\s?|[+#$¥€£₩₽₹￥]\s?"
    r"|(?i:usd|eur|rmb|cny|jpy|krw|rub|gbp|us\$|hk\$|rs\.?|r\$)\s?)$"
)
_RIGHT_REJECT = re.compile(
    r"^(?:[.,:/\-\u2013][0-9A-Za-z]| \d{3,}|\s?(?:元|円|원|€|%|年|月|日|号|時|时|歳|岁|萬|万"
    r"|(?i:руб|usd|eur|rmb|yen|dollars?|euros?|km|kg|mb|gb|px)(?![A-Za-z])))"
)
_UNIT = re.compile(
    r"^\d+(?:AM|PM|ST|ND|RD|TH|[KMGT]B|MS|[KMG]?HZ|PX|PT|EM|K|M|H|P|X|D|W|Y|MIN|SEC|HRS?)$"
)
_MIXED_STOP = frozenset({"UTF8", "UTF16", "H264", "H265", "IPV4", "IPV6", "MP3", "MP4", "COVID19"})


#: Full-width digits and Latin letters (common in CJK mail) to ASCII.
_FULLWIDTH = (
    {0xFF10 + i: 0x30 + i for i in range(10)}
    | {0xFF21 + i: 0x41 + i for i in range(26)}
    | {0xFF41 + i: 0x61 + i for i in range(26)}
)


def _prepare(text: str) -> str:
    text = text[:MAX_SCAN].translate(_FULLWIDTH)
    # The substitutions scan every position: skip them when there is nothing to find.
    if "://" in text or "www." in text.lower():
        text = _URL.sub(" ", text)
    if "@" in text:
        text = _EMAIL.sub(" ", text)
    return text


def _shape_ok(token: str) -> bool:
    if token.isdigit():
        return True
    has_digit = any(c.isdigit() for c in token)
    has_alpha = any(c.isalpha() for c in token)
    return (
        has_digit
        and has_alpha
        and token.upper() == token
        and token not in _MIXED_STOP
        and not _UNIT.match(token)
    )


def _date_like(token: str) -> bool:
    if not token.isdigit():
        return False
    if len(token) == 4:
        return 1900 <= int(token) <= 2099
    if len(token) == 8:
        year, month, day = int(token[:4]), int(token[4:6]), int(token[6:])
        return 1900 <= year <= 2099 and 1 <= month <= 12 and 1 <= day <= 31
    return False


def _windows(spans: list[tuple[int, int]], size: int) -> list[tuple[int, int]]:
    """Merged ranges covering ``WINDOW`` (plus a keyword's length) around each span."""
    margin = WINDOW + 40
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        lo, hi = max(0, start - margin), min(size, end + margin)
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


_DIGITS = re.compile(r"[0-9]+")


def candidate_matches(text: str) -> list[re.Match[str]]:
    """The matches of :data:`_CANDIDATE` in *text*, found only near digits.

    A candidate holds a digit within its first 8 characters and is at most 8 long, so it
    lies within 7 characters before and 8 after a run of digits: only those windows are
    scanned (a long text with few numbers costs little).  The scan is exact: a match cut
    off at a window's end would have to hold a digit past the window's last run, whose
    own window would have been merged in.  Texts whose windows cover much of them are
    scanned whole."""
    size = len(text)
    windows: list[list[int]] = []
    covered = 0
    for run in _DIGITS.finditer(text):
        lo, hi = max(0, run.start() - 7), min(size, run.end() + 8)
        if windows and lo <= windows[-1][1]:
            covered += hi - windows[-1][1]
            windows[-1][1] = hi
        else:
            covered += hi - lo
            windows.append([lo, hi])
        if covered * 4 > size:
            return list(_CANDIDATE.finditer(text))
    return [m for lo, hi in windows for m in _CANDIDATE.finditer(text, lo, hi)]


class _Source:
    """One prepared text, its candidates, and the keywords near them.

    Keywords are only looked for around candidates: the keyword patterns are
    large alternations, so this keeps long texts with few numbers cheap.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.candidates = [
            (m.start(), m.end()) for m in candidate_matches(text) if _shape_ok(m.group(0))
        ]
        windows = _windows(self.candidates, len(text))
        spans: list[tuple[int, int, bool]] = []
        negatives: list[tuple[int, int]] = []
        for lo, hi in windows:
            spans += [(m.start(), m.end(), True) for m in NOUN.finditer(text, lo, hi)]
            spans += [(m.start(), m.end(), False) for m in CONTEXT.finditer(text, lo, hi)]
            negatives += [(m.start(), m.end()) for m in NEGATIVE.finditer(text, lo, hi)]
        self.by_end = sorted(spans, key=lambda span: (span[1], not span[2]))
        self.ends = [span[1] for span in self.by_end]
        self.starts = sorted(spans)
        self.neg = negatives
        self.neg_ends = [end for _start, end in self.neg]

    def keyword_before(self, index: int) -> tuple[int, int, bool] | None:
        """The keyword ending last at or before ``index`` (nouns win ties)."""
        i = bisect.bisect_right(self.ends, index)
        return self.by_end[i - 1] if i else None

    def keyword_after(self, index: int) -> tuple[int, int, bool] | None:
        """The first keyword starting at or after ``index``."""
        i = bisect.bisect_left(self.starts, (index, 0, False))
        return self.starts[i] if i < len(self.starts) else None

    def negative_before(self, index: int) -> tuple[int, int] | None:
        """The negative keyword ending last at or before ``index``."""
        i = bisect.bisect_right(self.neg_ends, index)
        return self.neg[i - 1] if i else None


def _has_digit(text: str) -> bool:
    return any(c.isdigit() for c in text)


def _before_score(src: _Source, start: int, token: str, line: tuple[int, int]) -> tuple[int, int]:
    """(score, keyword end) for the nearest keyword before the candidate."""
    keyword = src.keyword_before(start)
    if keyword is None:
        return 0, -1
    text = src.text
    kw_start, kw_end, noun = keyword
    distance = start - kw_end
    if distance > WINDOW:
        return 0, kw_end
    gap = text[kw_end:start]
    digits = _has_digit(gap)
    if kw_start >= line[0] and distance <= 120:
        introduced = INTRO.search(gap) is not None or distance <= 3
        if not digits and distance <= 60 and (noun or introduced):
            return 10, kw_end
        return (3 if digits or not noun else 5), kw_end
    if gap.count("\n") <= 4 and not digits:
        lead = gap.split("\n", 1)[0]
        own_line = text[line[0] : line[1]].strip()
        if len(own_line) <= len(token) + 12 or not lead.strip() or INTRO.search(lead):
            return 7, kw_end
    return 0, kw_end


def _score(src: _Source, start: int, end: int, token: str, strong_anywhere: bool) -> int | None:
    """The score of the candidate ``token`` at ``text[start:end]``, None if rejected."""
    text = src.text
    if _LEFT_REJECT.search(text, max(0, start - 8), start) or _RIGHT_REJECT.match(
        text[end : end + 8]
    ):
        return None
    newline = text.rfind("\n", max(0, start - WINDOW), start)
    line_start = newline + 1 if newline >= 0 else max(0, start - WINDOW)
    line_end = text.find("\n", end, end + WINDOW)
    line_end = min(len(text), end + WINDOW) if line_end < 0 else line_end
    score, kw_end = _before_score(src, start, token, (line_start, line_end))
    tight = score == 10
    after = src.keyword_after(end)
    if (
        after is not None
        and after[0] < line_end
        and after[0] - end <= 40
        and not _has_digit(text[end : after[0]])
    ):
        score += 8
        tight = True
    negative = src.negative_before(start)
    if negative is not None and negative[1] >= kw_end and start - negative[1] <= 80:
        gap = text[negative[1] : start]
        if gap.count("\n") <= 2 and not _has_digit(gap):
            return None
    if _date_like(token) and (not tight or DATE_WORDS.search(text, line_start, line_end)):
        return None
    if score == 0 and not strong_anywhere:
        return None
    if text[line_start:line_end].strip(" \t:\uff1a.\u3002-*[]\u3010\u3011()\uff08\uff09") == token:
        score += 4
    if strong_anywhere:
        score += 2
    if not token.isdigit():
        score -= 1
    elif len(token) == 6:
        score += 1
    return score


def extract_verification_code(subject: str, text: str, html_text: str) -> str | None:
    """The verification code in a message, or None.

    ``subject`` is the decoded subject, ``text`` the plain text, ``html_text``
    the HTML rendered as text. Ties go to the subject, then text, then HTML,
    then the earliest position.
    """
    sources = [_Source(_prepare(s or "")) for s in (subject, text, html_text)]
    if not any(src.candidates for src in sources):
        return None
    strong_anywhere = any(has_strong_words(src.text) for src in sources)
    best: tuple[int, str] | None = None
    for src in sources:
        for start, end in src.candidates:
            token = src.text[start:end]
            score = _score(src, start, end, token, strong_anywhere)
            if score is None or score < THRESHOLD:
                continue
            if best is None or score > best[0]:
                best = (score, token)
    return best[1] if best is not None else None
