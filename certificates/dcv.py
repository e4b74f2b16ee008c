"""Domain Control Validation values: codes for email to a constructed address (CA/B Forum
BR 3.2.2.4.4) and random values for a DNS TXT record (BR 3.2.2.4.7).

Pure functions: make a random value, show it in readable groups, read back what the
customer pasted, and hash it for storage. The plain code exists only in the email; the
DNS value is stored encrypted, as the customer must be able to read it again.
"""

import hashlib
import hmac
import secrets

from django.utils.translation import gettext

# Crockford's base32: no I, L, O or U, so a code read aloud or retyped is not ambiguous.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
GROUP_SIZE = 5
GROUPS = 5
CODE_LENGTH = GROUP_SIZE * GROUPS
# 25 symbols of 5 bits: 125 bits, above the 112 bits the Baseline Requirements ask for.
ENTROPY_BITS = CODE_LENGTH * 5
# What people mistype for the symbols Crockford left out.
_LOOKALIKES = str.maketrans({"I": "1", "L": "1", "O": "0"})
# Separators people paste along with the code: spaces, dashes of any kind.
_SEPARATORS = str.maketrans("", "", " \t\r\n\u00a0-\u2010\u2011\u2012\u2013\u2014\u2212")


class DcvCodeError(ValueError):
    """The text cannot be a validation code; the message says why, for the customer."""


def dcv_code_generate() -> str:
    """A new code in its display form, e.g. ``7K2QD-9XH4M-…`` (five groups of five)."""
    value = secrets.randbits(ENTROPY_BITS)
    symbols = "".join(ALPHABET[(value >> (5 * position)) & 31] for position in range(CODE_LENGTH))
    return dcv_code_display(symbols)


def dcv_code_display(code: str) -> str:
    """Groups of five separated by dashes, from a normalised code."""
    return "-".join(code[i : i + GROUP_SIZE] for i in range(0, len(code), GROUP_SIZE))


def dcv_code_normalise(text: str) -> str:
    """The code as stored and compared: upper case, no separators, look-alikes mapped."""
    code = text.translate(_SEPARATORS).upper().translate(_LOOKALIKES)
    if not code:
        raise DcvCodeError(gettext("Paste the validation code from the e-mail."))
    if len(code) != CODE_LENGTH:
        raise DcvCodeError(
            gettext(
                "A validation code has %(expected)d letters and digits; this one has %(length)d."
            )
            % {"expected": CODE_LENGTH, "length": len(code)}
        )
    if any(symbol not in ALPHABET for symbol in code):
        raise DcvCodeError(
            gettext(
                "A validation code contains only letters and digits;"
                " paste it as it is in the e-mail."
            )
        )
    return code


def dcv_code_hash(code: str, *, key: bytes) -> str:
    """HMAC-SHA256 of the normalised code: a database leak alone cannot test guesses."""
    return hmac.new(key, code.encode("ascii"), hashlib.sha256).hexdigest()


def dcv_code_matches(code: str, *, stored_hash: str, keys: list[bytes]) -> bool:
    """Constant-time comparison against the stored hash, under any accepted key."""
    return any(hmac.compare_digest(dcv_code_hash(code, key=key), stored_hash) for key in keys)


# Validation by DNS record (BR §3.2.2.4.7): a random value the customer serves in TXT.
DNS_RECORD_LABEL = "_dnsauth"
# 16 bytes: 128 bits, above the 112 bits the Baseline Requirements ask for.
DNS_TOKEN_BYTES = 16


def dns_token_generate() -> str:
    """A new random value, URL-safe base64 (22 characters), to copy into a TXT record."""
    return secrets.token_urlsafe(DNS_TOKEN_BYTES)


def dns_record_name(server_name: str) -> str:
    """The TXT record's owner name for the server name (A-labels, no trailing dot)."""
    return f"{DNS_RECORD_LABEL}.{server_name}"


def dns_token_found(token: str, served: list[str]) -> bool:
    """Whether one of the TXT values served is the token (surrounding blanks ignored),
    compared in constant time."""
    expected = token.encode("ascii")
    return any(
        hmac.compare_digest(value.strip().encode("utf-8", "replace"), expected) for value in served
    )
