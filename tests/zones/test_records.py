import datetime

import pytest

from zones.records import (
    InvalidValue,
    ServerAddress,
    next_serial,
    owner_name,
    parse_server_address,
    tsig_key,
    txt_rdata,
    txt_value,
)

SECRET = "D5uioCATZgUq7L2ZYF8plLg3meupQqvRM9bPDSuvF7k="


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("127.0.0.1:5353", "127.0.0.1", 5353),
        ("bind9", "bind9", 53),
        ("[2001:db8::53]:5353", "2001:db8::53", 5353),
        ("2001:db8::53", "2001:db8::53", 53),
    ],
)
def test_parse_server_address(text, host, port):
    assert parse_server_address(text) == ServerAddress(host=host, port=port)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "No DNS server address"),
        ("127.0.0.1:dns", "no valid port"),
        ("127.0.0.1:70000", "no valid port"),
        (":53", "no host"),
        ("[::1", "write \\[IPv6\\]:port"),
    ],
)
def test_parse_server_address_refuses(text, message):
    with pytest.raises(InvalidValue, match=message):
        parse_server_address(text)


def test_server_address_text_brackets_ipv6():
    assert str(ServerAddress(host="::1", port=53)) == "[::1]:53"


def test_tsig_key():
    key = tsig_key(name="portal", secret=SECRET, algorithm="hmac-sha512")
    assert key.name.to_text() == "portal."
    assert len(key.secret) == 32
    assert key.algorithm.to_text() == "hmac-sha512."


@pytest.mark.parametrize(
    ("name", "secret", "algorithm", "message"),
    [
        ("", SECRET, "hmac-sha256", "No TSIG key name"),
        ("k", "", "hmac-sha256", "No secret given for the TSIG key k"),
        ("k", "abc$", "hmac-sha256", "not valid base64"),
        ("k", SECRET, "hmac-whatever", "not a supported TSIG algorithm"),
    ],
)
def test_tsig_key_refuses(name, secret, algorithm, message):
    with pytest.raises(InvalidValue, match=message):
        tsig_key(name=name, secret=secret, algorithm=algorithm)


def test_owner_name_allows_underscores_inside_the_zone_only():
    assert owner_name("_acme-challenge.Mail.example.com", zone="example.com").to_text() == (
        "_acme-challenge.mail.example.com."
    )
    assert owner_name("example.com.", zone="example.com").to_text() == "example.com."
    with pytest.raises(InvalidValue, match="not inside the zone"):
        owner_name("notexample.com", zone="example.com")


def test_txt_values_are_cut_into_strings_and_joined_back():
    rdata = txt_rdata("é" * 200)
    assert [len(s) for s in rdata.strings] == [255, 145]
    assert txt_value(rdata) == "é" * 200
    with pytest.raises(InvalidValue):
        txt_rdata("")


@pytest.mark.parametrize(
    ("current", "expected"),
    [(0, 2026_03_15_00), (2026_03_15_00, 2026_03_15_01), (2026_03_14_07, 2026_03_15_00)],
)
def test_next_serial_is_dated_and_always_grows(current, expected):
    assert next_serial(current, today=datetime.date(2026, 3, 15)) == expected
    assert next_serial(2026_03_16_00, today=datetime.date(2026, 3, 15)) == 2026_03_16_01
