"""DKIM key pairs: two selectors per platform, RSA-2048, the private key only encrypted."""

import base64

import pytest
from cryptography.hazmat.primitives import serialization

from certificates.encryption import decrypt, encrypt
from zones.dkim import dkim_key_generate, dkim_keys_generate, dkim_public_key, dkim_selectors
from zones.records import InvalidValue


def test_two_selectors_named_after_the_platform():
    assert dkim_selectors(platform="pex-ab12cd34") == ("pex-ab12cd34-1", "pex-ab12cd34-2")
    with pytest.raises(InvalidValue, match="is not a DKIM selector"):
        dkim_selectors(platform="pex_ab12")


def test_each_selector_gets_its_own_rsa_2048_pair_encrypted_by_the_caller():
    active, standby = dkim_keys_generate(platform="pex-ab12cd34", encrypt=encrypt)

    assert (active.selector, standby.selector) == ("pex-ab12cd34-1", "pex-ab12cd34-2")
    assert active.public_key != standby.public_key
    for key in (active, standby):
        pem = decrypt(key.private_key_encrypted)
        assert dkim_public_key(pem) == key.public_key
        public = serialization.load_der_public_key(base64.b64decode(key.public_key))
        assert public.key_size == 2048
        assert b"PRIVATE" not in key.private_key_encrypted.encode()


def test_a_rotation_makes_a_new_pair_for_one_selector():
    first = dkim_key_generate(selector="pex-ab12cd34-1", encrypt=encrypt)
    again = dkim_key_generate(selector="pex-ab12cd34-1", encrypt=encrypt)
    assert first.public_key != again.public_key


def test_dkim_public_key_refuses_what_is_not_an_rsa_private_key():
    with pytest.raises(InvalidValue, match="not a PEM private key"):
        dkim_public_key(b"-----BEGIN NOTHING-----")
