"""Every write of the provisioning app, a module per step of the hoster's guide:

- ``ordering``: accounts, orders, delivery (addresses and the delivery email);
- ``setup``: the customer's choices of server name, validation address and DNS Assist;
- ``dns``: DNS Assist, the instructions email and the checks (the DNS track);
- ``certificate``: the certificate order and its validation (emailed code or DNS-01);
- ``finalisation``: the wait, then ready and its email;
- ``domains``: the customer's mail domains after ready (DNS Assist, checks, removal);
- ``renewal``: the certificate's renewal, owed when it is issued, and its reminders;
- ``validation``: validation by DNS record, and the switch between email and DNS record;
- ``people``: an operator's retry and cancellation, resends asked by people;
- ``termination``: the billing system's suspension, resumption and termination;
- ``common``: what they all do alike (lock, record the event, owe a job, queue an email).

Each transition is one function that runs in one transaction, records its event and owes
its effects (outbox rows, sent after commit). ``JOBS`` maps each job kind to the function
that does it; provisioning.tasks runs them.
"""

from provisioning.services import (
    certificate,
    dns,
    domains,
    finalisation,
    ordering,
    renewal,
    termination,
    validation,
)
from provisioning.services.certificate import (
    platform_acme_dns,
    platform_acme_manual,
    platform_certificate_request,
    platform_dcv_resend,
    platform_dcv_submit,
)
from provisioning.services.common import SYSTEM, actor_for, platform_fail
from provisioning.services.dns import (
    expected_records,
    platform_dns_assist,
    platform_dns_assist_retry,
    platform_dns_check,
    platform_dns_check_now,
)
from provisioning.services.domains import (
    domain_add,
    domain_assist_confirm,
    domain_assist_retry,
    domain_check_now,
    domain_mode_change,
    domain_records_email_resend,
    domain_remove,
    platform_domains_release,
)
from provisioning.services.finalisation import platform_make_ready
from provisioning.services.ordering import account_create, platform_deliver, platform_order
from provisioning.services.people import (
    platform_cancel,
    platform_email_resend,
    platform_retry,
)
from provisioning.services.renewal import platform_certificate_revoke_replace
from provisioning.services.setup import platform_configure
from provisioning.services.termination import (
    platform_resume,
    platform_suspend,
    platform_terminate,
)
from provisioning.services.validation import (
    platform_certificate_dns_check_now,
    platform_validation_method_change,
)

JOBS = {
    **ordering.JOBS,
    **dns.JOBS,
    **certificate.JOBS,
    **finalisation.JOBS,
    **domains.JOBS,
    **termination.JOBS,
    **renewal.JOBS,
    **validation.JOBS,
}

__all__ = [
    "JOBS",
    "SYSTEM",
    "account_create",
    "actor_for",
    "domain_add",
    "domain_assist_confirm",
    "domain_assist_retry",
    "domain_check_now",
    "domain_mode_change",
    "domain_records_email_resend",
    "domain_remove",
    "expected_records",
    "platform_acme_dns",
    "platform_acme_manual",
    "platform_cancel",
    "platform_certificate_dns_check_now",
    "platform_certificate_request",
    "platform_certificate_revoke_replace",
    "platform_configure",
    "platform_dcv_resend",
    "platform_dcv_submit",
    "platform_deliver",
    "platform_dns_assist",
    "platform_dns_assist_retry",
    "platform_dns_check",
    "platform_dns_check_now",
    "platform_domains_release",
    "platform_email_resend",
    "platform_fail",
    "platform_make_ready",
    "platform_order",
    "platform_resume",
    "platform_retry",
    "platform_suspend",
    "platform_terminate",
    "platform_validation_method_change",
]
