"""Work the portal owes, kept in the database (the outbox pattern): platform jobs, emails
and, later, webhooks share it. It imports no other app of the portal; every app imports it.

- ``models``: the abstract ``OwedWork`` row and its one status enum, ``OwedStatus``.
- ``owed``: the vocabulary callers use instead of touching rows (``owe``, ``owe_once``,
  ``cancel_open``, ``run_now``, ``is_owed``, ``fulfil``) and the machinery a task and
  beat's sweep use (``claim``, ``finish``, ``reschedule``, ``retry_later``, ``give_up``,
  ``dispatch_due``).
- ``errors``: ``PortalError``, the base of every app's errors (a message in plain words,
  the field it concerns, whether it is transient).
- ``admin``: ``ReadOnlyAdminMixin`` for what operators see but never edit.
- ``encryption``: Fernet at rest for every app (``encrypt``, ``decrypt``, keys derived from
  ``SECRET_KEY``) and the rotation over each model's ``encrypted_fields``
  (``manage.py rotate_encryption_keys``).
"""
