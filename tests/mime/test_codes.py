"""Verification code extraction: the corpus and the individual rules."""

from __future__ import annotations

from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st
from twisted.trial import unittest

from a3mail.mime import extract_verification_code, parse_message
from a3mail.mime.codes import _CANDIDATE, candidate_matches
from a3mail.mime.codewords import STRONG, has_strong_words

from .corpus import CASES, NEGATIVE, POSITIVE


class CorpusTests(unittest.TestCase):
    """Every realistic message in the corpus gives the expected code."""

    def test_corpus_size(self) -> None:
        """The corpus has at least 30 messages, 10 of them without a code."""
        self.assertGreaterEqual(len(CASES), 30)
        self.assertGreaterEqual(len(NEGATIVE), 10)
        self.assertTrue(all(expected for _n, _raw, expected in POSITIVE))
        self.assertTrue(all(expected is None for _n, _raw, expected in NEGATIVE))

    def test_corpus(self) -> None:
        """parse_message finds the expected code in each corpus message."""
        wrong = [
            (name, expected, parse_message(raw).verification_code)
            for name, raw, expected in CASES
            if parse_message(raw).verification_code != expected
        ]
        self.assertEqual(wrong, [])


def code(text: str, subject: str = "", html_text: str = "") -> str | None:
    return extract_verification_code(subject, text, html_text)


class RuleTests(unittest.TestCase):
    """One rule each."""

    def test_keyword_before_on_same_line(self) -> None:
        """A code right after a code keyword is taken."""
        self.assertEqual(code("Your verification code is 482913."), "482913")
        self.assertEqual(code("您的验证码是583920，5分钟内有效"), "583920")

    def test_keyword_after(self) -> None:
        """A code right before a keyword is taken."""
        self.assertEqual(code("482913 is your login code"), "482913")

    def test_code_on_its_own_line(self) -> None:
        """A code alone on the line after the keyword is taken."""
        self.assertEqual(code("Verification code\n\n\n  734512  \n"), "734512")

    def test_subject_keyword_and_standalone_body(self) -> None:
        """A body that is just the code, with the keyword in the subject."""
        self.assertEqual(code("734512", subject="Your verification code"), "734512")

    def test_html_text_source(self) -> None:
        """The HTML-derived text is searched too."""
        self.assertEqual(code("", html_text="Your code:\n905113"), "905113")

    def test_alphanumeric(self) -> None:
        """Upper-case letter+digit codes are taken; units and lowercase words are not."""
        self.assertEqual(code("Your code: A7K9QZ"), "A7K9QZ")
        self.assertIsNone(code("Your code is 10AM"))
        self.assertIsNone(code("code: utf8 h264"))

    def test_full_width_digits(self) -> None:
        """Full-width digits are read as ASCII."""
        self.assertEqual(code("認証コード：１２３４５６"), "123456")

    def test_dates_rejected(self) -> None:
        """Dates and years are not codes."""
        self.assertIsNone(code("Verification code sent at 10:30 on 2024/01/15"))
        self.assertIsNone(code("Your code expired on 2024-01-15"))
        self.assertIsNone(code("Date: 20240115. Your verification code is below."))
        self.assertIsNone(code("© 2024 The code company"))

    def test_date_shaped_code_accepted_when_introduced(self) -> None:
        """An 8-digit code that happens to look like a date is taken right after the keyword."""
        self.assertEqual(code("Your verification code is 20240115"), "20240115")

    def test_phone_numbers_rejected(self) -> None:
        """Phone numbers in any grouping are not codes."""
        self.assertEqual(code("Your code is 123456\nCall +86 138 1234 5678"), "123456")
        self.assertIsNone(code("Verification help: call 555-0199 or +44 20 7946 0958"))
        self.assertIsNone(code("Verify by phone: (555) 123-4567"))

    def test_prices_rejected(self) -> None:
        """Prices with currency signs or decimals are not codes."""
        self.assertIsNone(code("Verification fee ¥1299, total $49.99, or 1,299.00 USD"))
        self.assertIsNone(code("Your code: 1299 руб"))

    def test_order_and_tracking_numbers_rejected(self) -> None:
        """Numbers introduced as order/invoice/tracking numbers are not codes."""
        self.assertIsNone(code("Confirmation code sent. Order number: 12345678"))
        self.assertIsNone(code("Verify your order #12345678"))
        self.assertIsNone(code("验证 订单号 87654321"))
        self.assertEqual(code("Your verification code is 839201. Ref: 99887766"), "839201")

    def test_urls_and_emails_ignored(self) -> None:
        """Numbers inside URLs and e-mail addresses are not codes."""
        self.assertIsNone(code("Verify: https://x.example/verify?code=839201"))
        self.assertIsNone(code("Verification code sent to user483920@example.com"))

    def test_promo_codes_rejected(self) -> None:
        """Promo, coupon and gift codes are not verification codes."""
        self.assertIsNone(code("Use promo code SAVE20 today"))
        self.assertIsNone(code("Ваш промокод: SALE2024"))

    def test_address_not_taken_after_verb(self) -> None:
        """A number after 'verify' that is not introduced as a code is ignored."""
        self.assertIsNone(code("Please verify your account at 1600 Amphitheatre Parkway"))

    def test_no_keyword_no_code(self) -> None:
        """Numbers without any code keyword are never taken."""
        self.assertIsNone(code("Meeting moved to room 4821.\n\n482913\n"))


# Letters whose case-insensitive regex match differs from their lower case (long s, Kelvin
# sign, dotted and dotless i, Angstrom sign, capital sharp s): has_strong_words does not fold
# them.
_UNFOLDED = "\u017f\u212a\u0130\u0131\u212b\u1e9e"
_STRONG_SAMPLES = [
    "Verification Code",
    "OTP",
    "otps",
    "hotp",
    "2FA",
    "x2fa",
    "2fab",
    "_otp",
    "é2fa",
    "PASSCODE",
    "Sign-Up code",
    "log in codes",
    "验证码",
    "ПОДТВЕРЖДЕНИЕ",
    "Bestätigung",
    "VÉRIFICATION",
    "one-time",
    "ONE\ttime",
    "access  codes",
    "Two Factor",
    "код",
]


class StrongWordsTests(unittest.TestCase):
    """has_strong_words answers what the case-insensitive STRONG pattern answers."""

    @settings(max_examples=500, deadline=None)
    @given(
        st.lists(st.one_of(st.sampled_from(_STRONG_SAMPLES), st.text(max_size=6)), max_size=6),
        st.sampled_from(["", " ", "\n"]),
    )
    def test_same_answer_as_the_case_insensitive_pattern(self, parts, glue) -> None:
        text = glue.join(parts)
        assume(not any(c in _UNFOLDED for c in text))
        self.assertEqual(has_strong_words(text), STRONG.search(text) is not None, repr(text))

    def test_word_boundaries_of_the_short_words(self) -> None:
        for text in ("your OTP: 123", "otp", "(2fa)", "OTPs are"):
            self.assertTrue(has_strong_words(text), text)
        for text in ("hotp", "otpx", "x2fa", "2fab", "_otp"):
            self.assertFalse(has_strong_words(text), text)


# Mostly words and spaces with a few digits (windows scanned), or dense digits (whole scan).
_SPARSE = list("abcdeXYZ") * 6 + list("  .-:\n") * 4 + list("0123456789")
_DENSE = list("aZ9 0.-x12\n:7")


class CandidateScanTests(unittest.TestCase):
    """candidate_matches scans only near digits, with the answers of a whole-text scan."""

    @settings(max_examples=500, deadline=None)
    @given(st.text(alphabet=st.sampled_from(_SPARSE), max_size=400))
    def test_sparse_texts_same_matches_as_a_whole_scan(self, text: str) -> None:
        self.assertEqual(_spans(candidate_matches(text)), _spans(_CANDIDATE.finditer(text)))

    @settings(max_examples=300, deadline=None)
    @given(st.text(alphabet=st.sampled_from(_DENSE), max_size=120))
    def test_dense_texts_same_matches_as_a_whole_scan(self, text: str) -> None:
        self.assertEqual(_spans(candidate_matches(text)), _spans(_CANDIDATE.finditer(text)))

    def test_tokens_reaching_past_a_window_are_not_taken(self) -> None:
        """``A1BCDEFGH`` is nine characters: no candidate, though its window (7 before the
        digit, 8 after) ends inside it; nor is a long run of letters after a code."""
        filler = "word " * 40
        for text in (filler + "A1BCDEFGH " + filler, filler + "code 123456abcdefghijk"):
            self.assertEqual(_spans(candidate_matches(text)), _spans(_CANDIDATE.finditer(text)))
        self.assertEqual(
            [m.group(0) for m in candidate_matches(filler + "your code 482913. " + filler)],
            ["482913"],
        )


def _spans(matches: Any) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in matches]
