"""Parse a message once at delivery: envelope, body structure, text, attachments, code.

``a3mail.mime`` depends only on the standard library and attrs.
"""

from .codes import extract_verification_code
from .model import PARSER_VERSION, ParsedMessage
from .parse import parse_message

__all__ = ["PARSER_VERSION", "ParsedMessage", "extract_verification_code", "parse_message"]
