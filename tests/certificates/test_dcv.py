import math
import re

import pytest

from certificates import dcv

DISPLAY = re.compile(r"^[0-9A-HJKMNP-TV-Z]{5}(-[0-9A-HJKMNP-TV-Z]{5}){4}$")


def test_code_carries_at_least_112_bits():
    assert dcv.ENTROPY_BITS >= 112
    # Each symbol of the 32-letter alphabet is one of 32 equally likely values.
    assert dcv.CODE_LENGTH * math.log2(len(set(dcv.ALPHABET))) >= 112


def test_code_is_shown_in_five_groups_of_five():
    code = dcv.dcv_code_generate()
    assert DISPLAY.match(code), code


def test_codes_differ_and_use_the_whole_alphabet():
    codes = {dcv.dcv_code_generate() for _ in range(500)}
    assert len(codes) == 500
    symbols = set("".join(codes).replace("-", ""))
    assert symbols == set(dcv.ALPHABET)


@pytest.mark.parametrize(
    "pasted",
    [
        "ABCDE-FGHJK-MNPQR-STVWX-YZ012",
        "  ABCDE-FGHJK-MNPQR-STVWX-YZ012\n",
        "abcde fghjk mnpqr stvwx yz012",
        "ABCDEFGHJKMNPQRSTVWXYZ012",
        "abcde\u2013fghjk\u2014mnpqr-stvwx-yz0l2",  # en and em dashes; l read as 1
        "ABCDE - FGHJK - MNPQR - STVWX - YZO12",  # O read as 0
    ],
)
def test_pasted_code_is_normalised(pasted):
    assert dcv.dcv_code_normalise(pasted) == "ABCDEFGHJKMNPQRSTVWXYZ012"


def test_lookalike_letters_are_read_as_digits():
    assert (
        dcv.dcv_code_normalise("IIIII-LLLLL-OOOOO-iiiii-ooooo")
        == "1" * 10 + "0" * 5 + "1" * 5 + "0" * 5
    )


@pytest.mark.parametrize(
    ("pasted", "message"),
    [
        ("", "Paste the validation code"),
        ("  - ", "Paste the validation code"),
        ("ABCDE-FGHJK", "has 25 letters and digits; this one has 10"),
        ("ABCDE-FGHJK-MNPQR-STVWX-YZ0123", "this one has 26"),
        ("ABCDE-FGHJK-MNPQR-STVWX-YZ01U", "only letters and digits"),
        ("ABCDE-FGHJK-MNPQR-STVWX-YZ01!", "only letters and digits"),
    ],
)
def test_malformed_code_is_refused_with_a_reason(pasted, message):
    with pytest.raises(dcv.DcvCodeError, match=message):
        dcv.dcv_code_normalise(pasted)


def test_hash_is_keyed_and_never_the_code():
    code = dcv.dcv_code_normalise(dcv.dcv_code_generate())
    first = dcv.dcv_code_hash(code, key=b"k" * 32)
    assert re.fullmatch(r"[0-9a-f]{64}", first)
    assert code not in first
    assert dcv.dcv_code_hash(code, key=b"k" * 32) == first
    assert dcv.dcv_code_hash(code, key=b"other key") != first


def test_code_matches_under_any_accepted_key():
    code = dcv.dcv_code_normalise(dcv.dcv_code_generate())
    stored = dcv.dcv_code_hash(code, key=b"old")
    assert dcv.dcv_code_matches(code, stored_hash=stored, keys=[b"new", b"old"])
    assert not dcv.dcv_code_matches(code, stored_hash=stored, keys=[b"new"])
    other = dcv.dcv_code_normalise(dcv.dcv_code_generate())
    assert not dcv.dcv_code_matches(other, stored_hash=stored, keys=[b"new", b"old"])
