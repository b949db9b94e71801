"""Realistic sign-up / transactional messages and the verification code each holds.

Each case is ``(name, raw message bytes, expected code or None)``. Messages are
written with ``\\n`` here and stored with CRLF, as a3mail stores them.
Encoded bodies (base64, quoted-printable, ISO-2022-JP) are the real encodings.
"""

from __future__ import annotations


def eml(text: str) -> bytes:
    """CRLF-terminated UTF-8 bytes of ``text``."""
    return text.replace("\n", "\r\n").encode("utf-8")


_HEAD = "From: {frm}\nTo: user@tmp.example\nSubject: {subject}\nDate: Mon, 15 Jan 2024 10:00:00 +0000\nMessage-ID: <{name}@mail.example>\nMIME-Version: 1.0\n"


def simple(
    name: str,
    subject: str,
    body: str,
    ctype: str = "text/plain; charset=utf-8",
    cte: str = "8bit",
    frm: str = "Acme <no-reply@acme.example>",
) -> bytes:
    """A single-part message."""
    head = _HEAD.format(frm=frm, subject=subject, name=name)
    return eml(f"{head}Content-Type: {ctype}\nContent-Transfer-Encoding: {cte}\n\n{body}")


POSITIVE: list[tuple[str, bytes, str | None]] = [
    (
        "en_plain",
        simple(
            "en_plain",
            "Verify your email",
            "Hi,\n\nYour verification code is 482913.\n"
            "It expires in 10 minutes.\n\nThe Acme team\n",
        ),
        "482913",
    ),
    (
        "en_subject_only",
        simple(
            "en_subject_only",
            "482913 is your Acme verification code",
            "Thanks for signing up to Acme!\n\nSee you soon.\n",
        ),
        "482913",
    ),
    (
        "en_html_only",
        simple(
            "en_html_only",
            "Confirm your account",
            "<!DOCTYPE html><html><head><style>td{font-family:Arial} .c{color:#333333}</style>"
            "<title>Acme</title></head><body><table><tr><td>Welcome to Acme!</td></tr>"
            "<tr><td>Enter this verification code in the app:</td></tr>"
            '<tr><td style="font-size:32px;font-weight:bold">739204</td></tr>'
            "<tr><td>&copy; 2024 Acme Inc., 1600 Main Street, Springfield, IL 62704</td></tr>"
            "</table></body></html>\n",
            ctype="text/html; charset=utf-8",
        ),
        "739204",
    ),
    (
        "en_alnum_standalone",
        simple(
            "en_alnum_standalone",
            "Your sign-in code",
            "Use the following code to sign in:\n\n    A7K9QZ\n\nThis code expires in 10 minutes."
            "\nIf you didn't request it, you can ignore this email.\n",
        ),
        "A7K9QZ",
    ),
    (
        "en_otp_base64",
        simple(
            "en_otp_base64",
            "One-time password",
            "SGVsbG8sCgpZb3VyIE9UUCBpcyA1NTMxLiBEbyBub3Qgc2hhcmUgaXQgd2l0aCBhbnlvbmUuCgpO\n"
            "ZWVkIGhlbHA/IENhbGwgdXMgYXQgKzEgKDU1NSkgMTIzLTQ1NjcuCg==\n",
            cte="base64",
        ),
        "5531",
    ),
    (
        "en_google_style",
        simple(
            "en_google_style",
            "Email verification code: 318274",
            "G-318274 is your Google verification code.\n\nDon't share this code with anyone.\n",
            frm="Google <noreply@google.example>",
        ),
        "318274",
    ),
    (
        "en_qp_html",
        simple(
            "en_qp_html",
            "Finish signing up",
            '<html><body><table width=3D"100%"><tr><td style=3D"font-family:Arial;font-s=\n'
            'ize:14px">Use the code below to finish signing up.</td></tr><tr><td style=\n'
            '=3D"font-size:28px;letter-spacing:6px;font-weight:bold">640172</td></tr><tr=\n'
            "><td>If you did not request this, ignore this email. &copy; 2024 Example Co=\n"
            "rp</td></tr></table></body></html>\n",
            ctype="text/html; charset=utf-8",
            cte="quoted-printable",
        ),
        "640172",
    ),
    (
        "en_code_with_order_number",
        simple(
            "en_code_with_order_number",
            "Security check",
            "Hello,\n\nYour security code for order #88812345 is 902615.\n"
            "Total: $49.99. Questions? Call 1-800-555-0199.\n",
        ),
        "902615",
    ),
    (
        "en_pin_copyright",
        simple(
            "en_pin_copyright",
            "Your card PIN",
            "Your PIN: 7391\n\nKeep it secret.\n\n(c) 2024 Bank of Example. All rights reserved.\n",
        ),
        "7391",
    ),
    (
        "en_eight_digits",
        simple(
            "en_eight_digits",
            "Your one-time passcode",
            "Your one-time passcode is 49271036. It is valid for 15 minutes.\n",
        ),
        "49271036",
    ),
    (
        "en_date_and_ip_noise",
        simple(
            "en_date_and_ip_noise",
            "New sign-in request",
            "On January 15, 2024 you asked to sign in.\n\nYour login code: 661203\n\n"
            "Requested at 10:42 UTC from 192.168.1.10, Berlin, Germany.\n",
        ),
        "661203",
    ),
    (
        "en_alternative_text_wins",
        eml(
            _HEAD.format(frm="Shop <hi@shop.example>", subject="Your code", name="alt")
            + 'Content-Type: multipart/alternative; boundary="ALT-1"\n\n'
            "--ALT-1\nContent-Type: text/plain; charset=us-ascii\n\n"
            "Your verification code: 305918\nOrder 77001122 will ship tomorrow.\n"
            "--ALT-1\nContent-Type: text/html; charset=us-ascii\n\n"
            "<p>Your verification code: <strong>305918</strong></p>\n--ALT-1--\n"
        ),
        "305918",
    ),
    (
        "zh_gb2312_base64",
        simple(
            "zh_gb2312_base64",
            "=?gb2312?B?0enWpMLrzajWqg==?=",
            "ob6/7NPKob/E+rXE0enWpMLrysejujU4MzkyMKOsNbfW1tPE2tPQ0Keho8frzvDQucK2uPjL+8jL\n"
            "oaMKyOe3x7G+yMuy2df3o6zH67r2wtSxvrbM0MWho7/Nt/6157uwIDQwMC04MDAtMTIzNAo=\n",
            ctype="text/plain; charset=gb2312",
            cte="base64",
        ),
        "583920",
    ),
    (
        "zh_html_with_order",
        simple(
            "zh_html_with_order",
            "注册验证",
            "<html><body><p>您好！</p><p>您正在注册账号，验证码为：</p>"
            '<p style="font-size:24px"><span>204817</span></p>'
            "<p>订单号：20240115 不是验证码。</p><p>客服电话：400-123-4567</p></body></html>\n",
            ctype="text/html; charset=utf-8",
        ),
        "204817",
    ),
    (
        "zh_subject_only",
        simple(
            "zh_subject_only",
            "=?utf-8?B?5oKo55qE5qCh6aqM56CBIDc3MTk=?=",
            "感谢您的使用。\n",
            frm="=?utf-8?B?5b+r6YKu?= <service@kuaiyou.example>",
        ),
        "7719",
    ),
    (
        "ja_iso2022jp",
        eml(
            _HEAD.format(
                frm="Example <info@example.jp>",
                subject="=?ISO-2022-JP?B?GyRCRyc+WiUzITwlSRsoQg==?=",
                name="ja",
            )
            + "Content-Type: text/plain; charset=ISO-2022-JP\nContent-Transfer-Encoding: 7bit\n\n"
        )
        + b"\x1b$BG'>Z%3!<%I!'\x1b(B836104\r\n\x1b$B$3$N%3!<%I$NM-8z4|8B$O\x1b(B10"
        b"\x1b$BJ,$G$9!#\x1b(B\r\n",
        "836104",
    ),
    (
        "ja_shift_jis_html_base64",
        simple(
            "ja_shift_jis_html_base64",
            "=?shift_jis?B?g1SBW4Nyg1iCzIKyl5iXcA==?=",
            "PGh0bWw+PGJvZHk+PHA+gqKCwoLggrKXmJdwgqCC6IKqgsaCpIKygrSCooLcgreBQjwvcD48cD6K\n"
            "bZRGg1KBW4Nogs0gPGI+NDkyMDE3PC9iPiCCxYK3gUI8L3A+PHA+MjAyNJROMYyOMTWT+jwvcD48\n"
            "L2JvZHk+PC9odG1sPgo=\n",
            ctype="text/html; charset=Shift_JIS",
            cte="base64",
        ),
        "492017",
    ),
    (
        "ko_ks_c_5601_base64",
        simple(
            "ko_ks_c_5601_base64",
            "=?utf-8?B?W+yHvO2VkeuqsF0g7J247KadIOy9lOuTnCDslYjrgrQ=?=",
            "W1dlYrnfvcVdCsDOwfW5+MijIFszMTg1MDZduKYgwNS3wsfYwda8vL/kLgqw7bC0vL7FzSAxNTg4\n"
            "LTEyMzQK\n",
            ctype="text/plain; charset=ks_c_5601-1987",
            cte="base64",
        ),
        "318506",
    ),
    (
        "ko_utf8_html_alnum",
        simple(
            "ko_utf8_html_alnum",
            "회원가입 안내",
            "<div>안녕하세요.</div><div>인증 코드: <b>7Q4M2X</b></div>"
            "<div>2024년 1월 15일 발송</div>\n",
            ctype="text/html; charset=utf-8",
        ),
        "7Q4M2X",
    ),
    (
        "es_quoted_printable",
        simple(
            "es_quoted_printable",
            "=?utf-8?Q?C=C3=B3digo_de_verificaci=C3=B3n?=",
            "Hola,\n\nTu c=C3=B3digo de verificaci=C3=B3n es 271839.\n"
            "Este c=C3=B3digo caduca en 15 minutos.\n",
            cte="quoted-printable",
        ),
        "271839",
    ),
    (
        "fr_latin1_quoted_printable",
        simple(
            "fr_latin1_quoted_printable",
            "Bienvenue",
            "Bonjour,\n\nVotre code de v=E9rification est : 615203\n\n"
            "Ce code expire dans 10 minutes.\n",
            ctype="text/plain; charset=ISO-8859-1",
            cte="quoted-printable",
        ),
        "615203",
    ),
    (
        "fr_subject_only",
        simple(
            "fr_subject_only",
            "=?iso-8859-1?Q?Code_de_v=E9rification_:_882144?=",
            "Merci de votre inscription.\n",
        ),
        "882144",
    ),
    (
        "de_plain",
        simple(
            "de_plain",
            "Ihre Registrierung",
            "Hallo,\n\nIhr Bestätigungscode lautet: 904712\n\n"
            "Musterstraße 1, 10115 Berlin\nTelefon 030 12345678\n",
        ),
        "904712",
    ),
    (
        "de_html_alnum",
        simple(
            "de_html_alnum",
            "Anmeldung",
            "<p>Ihr Sicherheitscode:</p><h2>K8M2P7</h2><p>Gültig bis 15.01.2024, 10:30 Uhr.</p>\n",
            ctype="text/html; charset=utf-8",
        ),
        "K8M2P7",
    ),
    (
        "ru_base64",
        simple(
            "ru_base64",
            "=?utf-8?B?0J/QvtC00YLQstC10YDQttC00LXQvdC40LUg0YDQtdCz0LjRgdGC0YDQsNGG0LjQuA==?=",
            "0JfQtNGA0LDQstGB0YLQstGD0LnRgtC1IQoK0JLQsNGIINC60L7QtCDQv9C+0LTRgtCy0LXRgNC2\n"
            "0LTQtdC90LjRjzogMzgyMArQndC40LrQvtC80YMg0L3QtSDRgdC+0L7QsdGJ0LDQudGC0LUg0Y3R\n"
            "gtC+0YIg0LrQvtC0Lgo=\n",
            cte="base64",
        ),
        "3820",
    ),
    (
        "pt_code_next_line",
        simple(
            "pt_code_next_line",
            "Confirme seu e-mail",
            "Olá!\n\nSeu código de verificação é:\n\n120934\n\nEquipe Exemplo\n",
        ),
        "120934",
    ),
    (
        "en_code_before_keyword_multipart_mixed",
        eml(
            _HEAD.format(frm="App <app@app.example>", subject="Welcome", name="mixed")
            + "Content-Type: multipart/mixed; boundary=MIX\n\n--MIX\n"
            "Content-Type: text/plain; charset=utf-8\n\n"
            "Welcome aboard!\n\n529104 is your one-time code.\n"
            "--MIX\nContent-Type: application/pdf; name=terms.pdf\n"
            "Content-Transfer-Encoding: base64\n"
            "Content-Disposition: attachment; filename=terms.pdf\n\nJVBERi0xLjQKJcfsj6IK\n--MIX--\n"
        ),
        "529104",
    ),
]

NEGATIVE: list[tuple[str, bytes, str | None]] = [
    (
        "en_order_shipped",
        simple(
            "en_order_shipped",
            "Your order #12345678 has shipped",
            "Order #12345678 confirmed.\nOrder date: 2024-01-15\nTotal: $49.99\n"
            "Tracking number: 1Z999AA10123456784\n",
        ),
        None,
    ),
    (
        "en_invoice",
        simple(
            "en_invoice",
            "Invoice INV-2024-0042",
            "Dear customer,\n\nInvoice INV-2024-0042 is attached.\nAmount due: 1,299.00 USD\n"
            "Due date: 15/01/2024\nQuestions? Call 555-0199.\n",
        ),
        None,
    ),
    (
        "en_booking_confirmation",
        simple(
            "en_booking_confirmation",
            "Booking confirmation",
            "Booking confirmation\nConfirmation number: 48213907\nCheck-in: 2024-03-15 14:00\n"
            "Total: €249.00\nHotel phone: +44 20 7946 0958\n",
        ),
        None,
    ),
    (
        "en_promo_newsletter",
        simple(
            "en_promo_newsletter",
            "20% off this weekend",
            "Use promo code SAVE20 at checkout!\nOffer valid until January 31, 2024.\n"
            "Prices from $19.99. Visit us at 350 Fifth Avenue, New York, NY 10118.\n",
        ),
        None,
    ),
    (
        "en_verify_link_only",
        simple(
            "en_verify_link_only",
            "Please verify your email",
            "Please verify your email address by clicking the link below:\n"
            "https://accounts.example.com/verify/839201?uid=55512345\n\n"
            "This link expires on 2024-01-15.\nQuestions? Call 1-800-555-0199.\n"
            "Example Inc, 1 Infinite Loop, Cupertino, CA 95014\n",
        ),
        None,
    ),
    (
        "zh_order",
        simple(
            "zh_order",
            "订单发货通知",
            "您的订单已发货。\n订单号：88889999\n下单日期：2024-01-15\n金额：¥1299\n"
            "快递单号：SF1234567890\n客服电话：400-800-1234\n",
        ),
        None,
    ),
    (
        "zh_verify_link",
        simple(
            "zh_verify_link",
            "请验证您的邮箱",
            "请点击以下链接验证您的邮箱：\nhttps://example.cn/verify?token=123456&uid=88889999\n"
            "如有疑问请致电 400-123-4567。\n© 2024 示例公司\n",
        ),
        None,
    ),
    (
        "ja_receipt_base64",
        simple(
            "ja_receipt_base64",
            "=?utf-8?B?44GU5rOo5paH56K66KqN?=",
            "grKSjZW2gqCC6IKqgsaCpIKygrSCooLcgreBQgqCspKNlbaU1I2GgUYxMjM0NTY3OAqCspKNlbaT\n"
            "+oFGMjAyNJROMYyOMTWT+gqNh4x2IIGPMTIsODAwgWmQxY2egWoKgqiW4oKijYeC7YK5IJNkmGIg\n"
            "MDMtMTIzNC01Njc4Cg==\n",
            ctype="text/plain; charset=shift_jis",
            cte="base64",
        ),
        None,
    ),
    (
        "ko_identity_phone",
        simple(
            "ko_identity_phone",
            "본인 인증 안내",
            "본인 인증을 위해 고객센터 02-1234-5678로 연락주세요.\n"
            "결제금액 45,000원\n2024년 1월 15일\n",
        ),
        None,
    ),
    (
        "es_factura",
        simple(
            "es_factura",
            "Factura de su pedido",
            "Factura 20240115\nPedido: 55512345\nImporte: 49,99 €\n"
            "Teléfono: +34 912 345 678\nCódigo postal 28013 Madrid\n",
        ),
        None,
    ),
    (
        "fr_commande",
        simple(
            "fr_commande",
            "Confirmation de commande",
            "Commande n° 40012345 du 15/01/2024.\nMontant : 89,90 €\n"
            "Livraison : 8 rue de Rivoli, code postal 75008 Paris\n",
        ),
        None,
    ),
    (
        "fr_expired_call",
        simple(
            "fr_expired_call",
            "Code de vérification expiré",
            "Votre code de vérification a expiré.\nPour recevoir un nouveau code, "
            "appelez le 01 23 45 67 89 avant le 15/01/2024.\n",
        ),
        None,
    ),
    (
        "de_rechnung",
        simple(
            "de_rechnung",
            "Ihre Rechnung",
            "Rechnung vom 15.01.2024\nBestellnummer 12345678\nBetrag: 1.299,00 EUR\n"
            "Telefon 030 12345678\nPostleitzahl 10115\n",
        ),
        None,
    ),
    (
        "ru_order_windows1251",
        simple(
            "ru_order_windows1251",
            "=?utf-8?B?0JfQsNC60LDQtyDQv9C+0LTRgtCy0LXRgNC20LTQtdC9?=",
            "x+Dq4OcguSAxMjM0NTY3OCDv7uTy4uXw5uTl7S4K0fPs7OA6IDEyOTkg8PPhLgrE4PLgOiAxNS4w\n"
            "MS4yMDI0CtLl6+X07u06ICs3IDQ5NSAxMjMtNDUtNjcK\n",
            ctype="text/plain; charset=windows-1251",
            cte="base64",
        ),
        None,
    ),
]

CASES = POSITIVE + NEGATIVE
