"""The certificate chain as a file to download, for the customer's page and admin alike."""

from django.http import Http404, HttpResponse

from certificates.models import CertificateOrder
from certificates.selectors import certificate_chain_pem


def chain_download(*, order: CertificateOrder | None) -> HttpResponse:
    """The issued certificate and its intermediates, as a server installs them; never the
    key. 404 until the certificate is issued."""
    if order is None or order.status != CertificateOrder.Status.ISSUED:
        raise Http404("No certificate issued yet.")
    response = HttpResponse(
        certificate_chain_pem(order=order), content_type="application/x-pem-file"
    )
    response["Content-Disposition"] = f'attachment; filename="{order.server_name}-chain.pem"'
    return response
