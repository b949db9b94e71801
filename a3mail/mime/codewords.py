"""Keyword tables for :mod:`a3mail.mime.codes`, in the languages we see most.

* NOUN: words that name the code itself ("code", "OTP", "验证码"); a number
  right after one of these is very likely the code.
* CONTEXT: words about verifying ("verify", "认证", "подтверждение"); a number
  counts after one only when it is introduced ("... is 123456", "...: 123456").
* STRONG: unambiguous verification vocabulary; seeing any of it anywhere in a
  message makes a code standing alone on its line acceptable.
* NEGATIVE: what precedes numbers that are not codes (orders, invoices,
  tracking, phones, prices, postcodes, promo codes, dates, copyright).
"""

from __future__ import annotations

import re

_STRONG_NOUNS = [
    r"verification\s*codes?",
    r"\botps?\b",
    r"passcodes?",
    r"security\s*codes?",
    r"confirmation\s*codes?",
    r"auth(?:entication)?\s*codes?",
    r"log[-\s]?in\s*codes?",
    r"sign[-\s]?(?:in|up)\s*codes?",
    r"access\s*codes?",
    "验证码",
    "校验码",
    "动态码",
    "动态密码",
    "确认码",
    "激活码",
    "驗證碼",
    "認證碼",
    "確認コード",
    "認証コード",
    "認証番号",
    "セキュリティコード",
    "인증번호",
    r"인증\s*코드",
    r"확인\s*코드",
    r"보안\s*코드",
    "código",
    "codigo",
    r"code\s+de\s+confirmation",
    r"code\s+de\s+sécurité",
    "bestätigungscode",
    "verifizierungscode",
    "sicherheitscode",
    "einmalcode",
    "anmeldecode",
    "zugangscode",
    "prüfcode",
    "codice",
]
_WEAK_NOUNS = [r"\bcodes?\b", r"\bpin\b", "コード", "코드", "код"]
_STRONG_CONTEXT = [
    r"verification",
    r"verify(?:ing)?",
    r"one[-\s]?time",
    r"\b2fa\b",
    r"two[-\s]factor",
    "验证",
    "驗證",
    "認証",
    "ワンタイム",
    "인증",
    "verificación",
    "verificacion",
    "vérification",
    "bestätigung",
    "verifizierung",
    "подтвержд",
    "проверочн",
    "одноразов",
]
_WEAK_CONTEXT = [r"\bconfirm(?:ation)?\b", "확인"]

_NEGATIVE = [
    r"\border",
    r"\binvoice",
    r"\btracking",
    r"\btrack\b",
    r"\breceipt",
    r"\bref(?:erence)?\b",
    r"\btransaction",
    r"\baccount\s*(?:number|no|id|#)",
    r"\bcustomer\s*(?:id|number|no)",
    r"\bmember",
    r"\buser\s*id",
    r"\bid\b",
    r"\bphone",
    r"\btel\b",
    r"\btelephone",
    r"\bmobile",
    r"\bfax\b",
    r"\bcall\b",
    r"\bhotline",
    r"\bzip",
    r"\bpostal",
    r"\bpost\s*code",
    r"\bplz\b",
    r"\bprice",
    r"\btotal",
    r"\bamount",
    r"\bsubtotal",
    r"\bqty\b",
    r"\bquantity",
    r"\bsku\b",
    r"\bitem",
    r"\bticket",
    r"\bbooking",
    r"\breservation",
    r"\bconfirmation\s*(?:number|no\b|#)",
    r"\bflight",
    r"\breferral\w*(?:\s*codes?)?",
    r"\bpromo\w*(?:\s*codes?)?",
    r"\bcoupon\w*(?:\s*codes?)?",
    r"\bdiscount\w*(?:\s*codes?)?",
    r"\bvoucher\w*(?:\s*codes?)?",
    r"\bgift\w*(?:\s*codes?)?",
    r"\barea\s*code",
    r"\bcountry\s*code",
    r"\berror",
    r"\bstatus\s*code",
    r"\bqr\s*code",
    r"\bproduct",
    r"\bmodel",
    r"\bserial",
    r"\bversion",
    r"\bsuite",
    r"\bapt\b",
    r"\bfloor",
    r"\bbox\b",
    r"\bstreet",
    r"\bst\b\.?",
    r"\bave(?:nue)?\b",
    r"\broad\b",
    r"\bno\.",
    r"\bnr\.",
    r"\bdated?\b",
    r"\bcopyright",
    r"\bissued",
    "#",
    "№",
    "©",
    "订单",
    "单号",
    "发票",
    "快递",
    "运单",
    "物流",
    "电话",
    "手机",
    "客服",
    "价格",
    "金额",
    "邮编",
    "合计",
    "总计",
    "优惠",
    "兑换码",
    "日期",
    "注文",
    "電話",
    "価格",
    "郵便",
    "金額",
    "合計",
    "お問い合わせ番号",
    "주문",
    "전화",
    "가격",
    "우편",
    "금액",
    "결제",
    "pedido",
    "factura",
    "teléfono",
    "telefono",
    "precio",
    "importe",
    r"código\s+postal",
    "seguimiento",
    "commande",
    "facture",
    "téléphone",
    r"\bprix\b",
    "montant",
    r"code\s+postal",
    "bestellung",
    "bestellnummer",
    "rechnung",
    "telefon",
    r"\bpreis",
    "betrag",
    "sendungsnummer",
    "postleitzahl",
    "kundennummer",
    r"stra(?:ße|sse)\b",
    "заказ",
    "счет",
    "счёт",
    "телефон",
    "цена",
    "сумма",
    "индекс",
    "промокод",
    "трек",
]


def _alternation(words: list[str]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{w})" for w in words), re.IGNORECASE)


NOUN = _alternation(_STRONG_NOUNS + _WEAK_NOUNS)
CONTEXT = _alternation(_STRONG_CONTEXT + _WEAK_CONTEXT)
STRONG = _alternation(_STRONG_NOUNS + _STRONG_CONTEXT)
NEGATIVE = _alternation(_NEGATIVE)

# STRONG is looked for over whole texts (up to 30,000 characters each), which the
# case-insensitive alternation does slowly: the regex engine tries every word at every
# position (1.3 ms for 3.6 KB).  Over the lower-cased text, a case-sensitive alternation of
# words that do not start with ``\b`` lets it skip to the characters a word can start
# with (9 times faster); the two ``\b`` words are matched without it and checked after.
_STRONG_WORDS = _STRONG_NOUNS + _STRONG_CONTEXT
assert all(word == word.lower() for word in _STRONG_WORDS), "STRONG words must be lower-case"
_STRONG_PLAIN = re.compile(
    "|".join(f"(?:{word})" for word in _STRONG_WORDS if not word.startswith(r"\b"))
)
_STRONG_BOUNDED = re.compile(
    "|".join(f"(?:{word[2:]})" for word in _STRONG_WORDS if word.startswith(r"\b"))
)
_WORD_CHAR = re.compile(r"\w")


def has_strong_words(text: str) -> bool:
    """Whether *text* contains STRONG vocabulary anywhere (what ``STRONG.search`` tells,
    over ``text.lower()``: the rare letters whose case-insensitive match differs from
    their lower case, such as the long s or the Kelvin sign, are not folded)."""
    lowered = text.lower()
    if _STRONG_PLAIN.search(lowered):
        return True
    for match in _STRONG_BOUNDED.finditer(lowered):
        start = match.start()
        if start == 0 or not _WORD_CHAR.match(lowered, start - 1):
            return True
    return False


#: Words that make a year-like or date-like number on the same line a date.
DATE_WORDS = re.compile(
    r"(?i)\b(?:date|dated|year|copyright|jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec"
    r"|january|february|march|april|june|july|august|september|october|november|december)\b"
    r"|©|年|月|日期"
)

#: How text introducing a code ends ("Your code is", "Code :", "验证码为").
INTRO = re.compile(
    r"(?:[:\uff1a]|\bis|\best|\bist|\bes|\blautet|是|为|為|は|입니다|:?\s*-+)\s*$",
    re.IGNORECASE,
)
