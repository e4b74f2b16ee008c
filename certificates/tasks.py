"""Periodic work of the certificates app: the clock's part of the certificate's track."""

from celery import shared_task

from certificates import services


@shared_task(name="certificates.tasks.sweep_certificates")
def sweep_certificates() -> dict[str, int]:
    """Mark certificates expiring or expired, then destroy the private keys of those
    replaced or revoked and past their end. Each part is bounded and safe to rerun; beat
    calls it every hour (portal/celery.py)."""
    marked = services.certificate_orders_expiry_mark()
    destroyed = services.certificate_keys_destroy_expired()
    return {"marked": marked, "keys_destroyed": destroyed}
