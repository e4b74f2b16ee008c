"""Domain names: pure parsing and normalisation, no I/O.

Names are kept as lower-case A-labels without the trailing dot (RFC 1035 limits,
IDNA 2008 with UTS #46 mapping for internationalised names). A label mixing scripts
(UTS #39) is refused: it can pass for another name.
"""

import functools
import re

import idna
from django.utils.translation import gettext
from fontTools import unicodedata as ucd

MAX_NAME_LENGTH = 253
MAX_LABEL_LENGTH = 63
_LDH_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")

# Python's unicodedata has no script property; fontTools.unicodedata carries Unicode's
# Scripts.txt and ScriptExtensions.txt, kept current with each Unicode release.
# Common (digits, hyphen) and Inherited (combining marks) go with any script.
_ANY_SCRIPT = {"Zyyy", "Zinh"}
# UTS #39 §5.2 "highly restrictive": one script, or Latin with the scripts of one CJK
# writing system (Japanese, Chinese with Bopomofo, Korean).
_CJK_WRITING_SYSTEMS = (
    {"Latn", "Hani", "Hira", "Kana"},
    {"Latn", "Hani", "Bopo"},
    {"Latn", "Hani", "Hang"},
)


class InvalidDomainName(ValueError):
    """The text is not a usable domain name; the message says why, for the customer."""


def normalise_domain(text: str) -> str:
    """Return the A-label form of a host or domain name, or raise InvalidDomainName."""
    name = text.strip()
    if name.endswith("."):
        name = name[:-1]
    if not name:
        raise InvalidDomainName(gettext("Enter a domain name, for example example.com."))
    if any(char.isspace() for char in name):
        raise InvalidDomainName(gettext("A domain name cannot contain spaces."))
    if len(name) > MAX_NAME_LENGTH * 4:
        raise InvalidDomainName(
            gettext("A domain name has at most %(max)d characters.") % {"max": MAX_NAME_LENGTH}
        )
    labels = name.split(".")
    if any(label == "" for label in labels):
        raise InvalidDomainName(gettext("A domain name cannot contain empty labels (“..”)."))
    ascii_labels = [_ascii_label(label) for label in labels]
    if len(ascii_labels) < 2:
        raise InvalidDomainName(
            gettext("Enter a full domain name with its extension, such as example.com.")
        )
    if ascii_labels[-1].isdigit():
        raise InvalidDomainName(gettext("The last label of a domain name cannot be a number."))
    result = ".".join(ascii_labels)
    if len(result) > MAX_NAME_LENGTH:
        raise InvalidDomainName(
            gettext("A domain name has at most %(max)d characters; this one has %(length)d.")
            % {"max": MAX_NAME_LENGTH, "length": len(result)}
        )
    return result


def _ascii_label(label: str) -> str:
    if label.isascii():
        ascii_label = label.lower()
    else:
        try:
            ascii_label = idna.encode(label, uts46=True).decode("ascii")
        except idna.IDNAError as error:
            raise InvalidDomainName(
                gettext("“%(label)s” is not a valid internationalised label (%(reason)s).")
                % {"label": label, "reason": error}
            ) from None
    if len(ascii_label) > MAX_LABEL_LENGTH:
        raise InvalidDomainName(
            gettext(
                "Each part of a domain name has at most %(max)d characters; "
                "“%(start)s…” has %(length)d."
            )
            % {"max": MAX_LABEL_LENGTH, "start": label[:20], "length": len(ascii_label)}
        )
    if not _LDH_LABEL.match(ascii_label):
        raise InvalidDomainName(
            gettext(
                "“%(label)s” may only contain letters, digits and hyphens, "
                "and cannot start or end with a hyphen."
            )
            % {"label": label}
        )
    if ascii_label[2:4] == "--" and not ascii_label.startswith("xn--"):
        raise InvalidDomainName(
            gettext("“%(label)s” has hyphens in the third and fourth positions.") % {"label": label}
        )
    if ascii_label.startswith("xn--"):
        try:
            unicode_label = idna.decode(ascii_label)
        except idna.IDNAError:
            raise InvalidDomainName(
                gettext("“%(label)s” is not a valid internationalised label.") % {"label": label}
            ) from None
        scripts = mixed_scripts(unicode_label)
        if scripts:
            raise InvalidDomainName(
                gettext(
                    "“%(label)s” (%(a_label)s) mixes letters of several scripts (%(scripts)s): "
                    "such a name can pass for another one. Type it in one script."
                )
                % {"label": label, "a_label": ascii_label, "scripts": ", ".join(scripts)}
            )
    return ascii_label


def mixed_scripts(label: str) -> list[str]:
    """The scripts a label mixes (their English names), or [] when it passes UTS #39's
    "highly restrictive" level."""
    per_char = [ucd.script_extension(char) - _ANY_SCRIPT for char in label]
    per_char = [scripts for scripts in per_char if scripts]
    if not per_char or set.intersection(*per_char):
        return []
    if any(all(scripts & system for scripts in per_char) for system in _CJK_WRITING_SYSTEMS):
        return []
    # One script per character, in the order they appear, for the message.
    names = []
    for scripts in per_char:
        name = ucd.script_name(min(scripts))
        if name not in names:
            names.append(name)
    return names


@functools.lru_cache(maxsize=4096)
def display_domain(name: str) -> str:
    """The U-label form for people; falls back to the stored form. (Remembered: a page
    shows the same few names many times, and IDNA decoding is slow.)"""
    try:
        return idna.decode(name)
    except idna.IDNAError:
        return name


def parent_domains(name: str) -> list[str]:
    """The name and every parent of it with at least two labels, longest first."""
    labels = name.split(".")
    return [".".join(labels[i:]) for i in range(len(labels) - 1)]
