"""The internal CA's public files: what relying parties fetch, with no login."""

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from certificates import services


@require_GET
def intermediate_crl(request: HttpRequest) -> HttpResponse:
    """The CRL named in the CRL Distribution Points of the certificates the internal CA
    issues (RFC 5280 §4.2.1.13): DER, signed by the intermediate."""
    return HttpResponse(services.internal_ca_crl(), content_type="application/pkix-crl")
