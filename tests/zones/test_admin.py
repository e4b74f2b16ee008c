import pytest

from zones.models import EmbeddedZone
from zones.writers import EmbeddedWriter

pytestmark = pytest.mark.django_db


def test_the_embedded_store_is_shown_read_only_in_admin(admin_client):
    EmbeddedWriter().set_address_records(
        zone="example.test", name="mail.example.test", ipv4="192.0.2.1", ipv6="2001:db8::1", ttl=60
    )

    zones = admin_client.get("/admin/zones/embeddedzone/")
    records = admin_client.get("/admin/zones/embeddedrecord/?q=mail")

    assert zones.status_code == 200
    assert "example.test" in zones.text
    assert records.status_code == 200
    assert "2001:db8::1" in records.text
    zone = EmbeddedZone.objects.get()
    page = admin_client.get(f"/admin/zones/embeddedzone/{zone.pk}/change/")
    assert page.status_code == 200
    assert "192.0.2.1" in page.text
    assert admin_client.get("/admin/zones/embeddedrecord/add/").status_code == 403
