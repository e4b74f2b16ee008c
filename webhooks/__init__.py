"""Signed webhooks to the billing system (ORDER_WEBHOOK_URL): each event an outbox row,
written in the transaction of the change it tells of, POSTed after commit, retried with
backoff until the receiver takes it. A leaf app: it imports only outbox and takes plain
values (anything with ``service`` and ``state``)."""
