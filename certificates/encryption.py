"""The certificates layer's name for the portal's encryption at rest, which lives in
``outbox.encryption`` so that every app may use it (private keys here, DKIM keys, the
secrets of queued emails)."""

from outbox.encryption import DecryptionError, decrypt, encrypt, reencrypt, secret_key_derive

__all__ = ["DecryptionError", "decrypt", "encrypt", "reencrypt", "secret_key_derive"]
