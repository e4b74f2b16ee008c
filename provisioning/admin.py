"""The operators' and support staff's view of every order."""

from django.contrib import admin, messages
from django.contrib.contenttypes.admin import GenericTabularInline
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, Subquery
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.timesince import timesince

from certificates.downloads import chain_download
from notifications.models import Email
from outbox.admin import EstimatedCountPaginator, ReadOnlyAdminMixin
from outbox.errors import PortalError
from provisioning import selectors, services
from provisioning.forms import ZoneForm
from provisioning.models import Account, Domain, Job, Platform, PlatformEvent, Zone
from provisioning.rules import validation_addresses


class StuckFilter(admin.SimpleListFilter):
    title = "stuck"
    parameter_name = "stuck"

    def lookups(self, request, model_admin):
        return [("yes", "Stuck"), ("no", "On time")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(is_stuck=True)
        if self.value() == "no":
            return queryset.filter(is_stuck=False)
        return queryset


class CertificateExpiringFilter(admin.SimpleListFilter):
    """Certificates in use within 14 days of their end and not renewed, or ended."""

    title = "certificate expiring"
    parameter_name = "certificate_expiring"

    def lookups(self, request, model_admin):
        return [("yes", "Expiring or expired, not renewed")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(selectors.certificate_expiring_condition())
        return queryset


class ReadOnlyInline(ReadOnlyAdminMixin):
    extra = 0
    can_delete = False
    show_change_link = False


class ZoneInline(admin.TabularInline):
    model = Zone
    form = ZoneForm
    extra = 0


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ["nic", "email", "language", "created_at"]
    search_fields = ["nic", "email", "zones__name"]
    list_filter = ["language"]
    filter_horizontal = ["users"]
    inlines = [ZoneInline]


class EventInline(ReadOnlyInline, admin.TabularInline):
    model = PlatformEvent
    fields = ["created_at", "kind", "actor", "message"]
    readonly_fields = fields
    verbose_name_plural = "Timeline"


class EmailInline(ReadOnlyInline, GenericTabularInline):
    model = Email
    ct_field = "target_type"
    ct_fk_field = "target_id"
    fields = [
        "created_at",
        "kind",
        "recipient",
        "subject",
        "status",
        "attempts",
        "sent_at",
        "last_error",
        "requested_by",
        "preview",
    ]
    readonly_fields = fields
    verbose_name_plural = "Emails"

    @admin.display(description="Preview")
    def preview(self, email):
        url = reverse("admin:notifications_email_change", args=[email.pk])
        return format_html('<a href="{}">Open</a>', url)


class JobInline(ReadOnlyInline, admin.TabularInline):
    model = Job
    fields = ["kind", "status", "attempts", "due_at", "last_error", "finished_at"]
    readonly_fields = fields


class DomainInline(ReadOnlyInline, admin.TabularInline):
    model = Domain
    fields = ["name", "mode", "state", "dns_assist", "assist_status", "records_summary", "message"]
    readonly_fields = fields
    show_change_link = True
    verbose_name_plural = "Mail domains"

    @admin.display(description="Records")
    def records_summary(self, domain):
        return domain_records_summary(domain)


def domain_records_summary(domain: Domain) -> str:
    """Each record's type and status as the last check left it, e.g. "MX ok, TXT missing"."""
    if not domain.records:
        return "not checked yet"
    return ", ".join(f"{row['type']} {row['relative']} {row['status']}" for row in domain.records)


@admin.register(Platform)
class PlatformAdmin(admin.ModelAdmin):
    list_display = [
        "service",
        "account",
        "state",
        "in_state_for",
        "stuck",
        "server_name",
        "dns_assist",
        "dns_state",
        "ca_backend",
        "certificate_ends",
        "created_at",
        "last_event",
    ]
    list_filter = [
        "state",
        "dns_state",
        "dns_assist",
        "certificate__backend",
        StuckFilter,
        CertificateExpiringFilter,
    ]
    search_fields = [
        "service",
        "account__nic",
        "domain",
        "server_name",
        "validation_email",
        "account__email",
        "=order_number",
    ]
    # Same fields, searched by selectors.platforms_matching so that PostgreSQL's trigram
    # indexes serve them, the account's side included (get_search_results).
    search_help_text = (
        "A piece of the service name, domain, server name, validation address, NIC handle or "
        "account e-mail, or the whole order number. Several words: each must be found."
    )
    list_select_related = ["account", "certificate"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "account",
                    "service",
                    "order_number",
                    "state",
                    "in_state_for",
                    "stuck",
                    "failed_from",
                    "failure_reason",
                ]
            },
        ),
        (
            "Setup",
            {
                "fields": [
                    "domain",
                    "server_name",
                    "validation_email",
                    "validation_method",
                    "dns_assist",
                    "ipv4",
                    "ipv6",
                ]
            },
        ),
        ("DNS", {"fields": ["dns_state", "dns_message", "dns_check_table", "dns_checked_at"]}),
        ("Certificate", {"fields": ["certificate_details", "certificate_history"]}),
        (
            "Times",
            {"fields": ["created_at", "state_changed_at", "configured_at", "due_at", "ready_at"]},
        ),
    ]
    # Nothing on the detail page is edited by hand: states change through the actions.
    readonly_fields = [name for _, options in fieldsets for name in options["fields"]]
    inlines = [EventInline, EmailInline, JobInline, DomainInline]
    actions = [
        "retry_failed_stage",
        "recheck_dns",
        "retry_dns_assist",
        "resend_email",
        "cancel_platforms",
        "suspend_platforms",
        "resume_platforms",
        "terminate_platforms",
        "revoke_and_replace",
    ]
    change_form_template = "admin/provisioning/platform/change_form.html"

    def get_queryset(self, request):
        latest = PlatformEvent.objects.filter(platform=OuterRef("pk"))
        latest = latest.order_by("-created_at", "-id")
        platforms = (
            super()
            .get_queryset(request)
            .annotate(
                last_event_kind=Subquery(latest.values("kind")[:1]),
                last_event_at=Subquery(latest.values("created_at")[:1]),
            )
        )
        return selectors.platforms_with_stuck(platforms)

    def get_search_results(self, request, queryset, search_term):
        if not search_term:
            return queryset, False
        return selectors.platforms_matching(queryset, search_term), False

    @admin.display(description="Last event", ordering="last_event_at")
    def last_event(self, platform):
        if not platform.last_event_kind:
            return "—"
        return f"{platform.last_event_kind} ({platform.last_event_at:%Y-%m-%d %H:%M})"

    @admin.display(description="In state for", ordering="state_changed_at")
    def in_state_for(self, platform):
        return timesince(platform.state_changed_at)

    @admin.display(description="Stuck", boolean=True)
    def stuck(self, platform):
        return platform.is_stuck

    @admin.display(description="CA", ordering="certificate__backend")
    def ca_backend(self, platform):
        return platform.certificate.backend if platform.certificate else "—"

    @admin.display(description="Certificate ends", ordering="certificate__not_after")
    def certificate_ends(self, platform):
        order = platform.certificate
        if order is None or order.not_after is None:
            return "—"
        flag = selectors.certificate_flag(order)
        if not flag:
            return f"{order.not_after:%Y-%m-%d}"
        return format_html(
            '<strong class="certificate-{}" style="color:{}">{} ({})</strong>',
            flag,
            "#b3261e" if flag == "expired" else "#8a5a00",
            f"{order.not_after:%Y-%m-%d}",
            flag,
        )

    @admin.display(description="Certificate history")
    def certificate_history(self, platform):
        orders = selectors.certificate_history(platform)
        if not orders:
            return "—"
        rows = format_html_join(
            "",
            "<tr><td>#{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
            "<td>{}</td><td>{}</td></tr>",
            (
                (
                    o.order_number,
                    "current" if o.pk == platform.certificate_id else "",
                    o.get_status_display(),
                    o.method,
                    o.serial or "—",
                    o.issuer or "—",
                    o.not_before or "—",
                    o.not_after or "—",
                )
                for o in orders
            ),
        )
        return format_html(
            "<table><tr><th>Order</th><th></th><th>Status</th><th>Method</th><th>Serial</th>"
            "<th>Issuer</th><th>Not before</th><th>Not after</th></tr>{}</table>",
            rows,
        )

    @admin.display(description="Last DNS check")
    def dns_check_table(self, platform):
        if not platform.dns_records:
            return "Not checked yet"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (r["rtype"], r["name"], r["expected"], ", ".join(r["found"]) or "—", r["status"])
                for r in platform.dns_records
            ),
        )
        return format_html(
            "<table><tr><th>Type</th><th>Name</th><th>Expected</th><th>Found</th>"
            "<th>Status</th></tr>{}</table>",
            rows,
        )

    @admin.display(description="Certificate")
    def certificate_details(self, platform):
        order = platform.certificate
        if order is None:
            return "No certificate order yet"
        details = format_html(
            "Backend {} · method {} · status {}<br>Serial {}<br>Issuer {}<br>Valid {} → {}<br>"
            "Validation address {} · wrong codes {} · locked {}",
            order.backend,
            order.method,
            order.status,
            order.serial or "—",
            order.issuer or "—",
            order.not_before or "—",
            order.not_after or "—",
            order.validation_email,
            order.dcv_attempts,
            "yes" if order.dcv_locked else "no",
        )
        flag = selectors.certificate_flag(order)
        if flag:
            details = format_html(
                '{}<br><strong style="color:{}">Certificate {}</strong>',
                details,
                "#b3261e" if flag == "expired" else "#8a5a00",
                flag,
            )
        if not order.certificate_pem:
            return details
        url = reverse("admin:provisioning_platform_chain", args=[platform.pk])
        return format_html('{}<br><a href="{}">Download the chain (PEM)</a>', details, url)

    def has_add_permission(self, request):
        return False  # orders come from the ordering system (API or place_order)

    def has_delete_permission(self, request, obj=None):
        return False

    def has_resend_permission(self, request):
        return request.user.has_perm("provisioning.resend_email")

    # Actions

    def _each(self, request, queryset, service, done: str, **kwargs):
        actor = f"staff:{request.user.get_username()}"
        for platform in queryset:
            try:
                service(platform_id=platform.pk, actor=actor, **kwargs)
            except PortalError as error:
                self.message_user(request, f"{platform}: not possible — {error}", messages.ERROR)
            else:
                self.message_user(request, f"{platform}: {done}.", messages.SUCCESS)

    @admin.action(description="Retry the failed stage", permissions=["change"])
    def retry_failed_stage(self, request, queryset):
        self._each(request, queryset, services.platform_retry, "retried")

    @admin.action(description="Re-check DNS now", permissions=["change"])
    def recheck_dns(self, request, queryset):
        self._each(
            request,
            queryset.exclude(server_name=""),
            services.platform_dns_check_now,
            "DNS checked",
        )

    @admin.action(description="Retry DNS Assist", permissions=["change"])
    def retry_dns_assist(self, request, queryset):
        self._each(request, queryset, services.platform_dns_assist_retry, "DNS Assist retried")

    @admin.action(description="Resend an email…", permissions=["resend"])
    def resend_email(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Choose one platform to resend an email.", messages.ERROR)
            return None
        return redirect("admin:provisioning_platform_resend", queryset.get().pk)

    @admin.action(description="Cancel", permissions=["change"])
    def cancel_platforms(self, request, queryset):
        self._each(request, queryset, services.platform_cancel, "cancelled")

    # The billing system's actions, for operators, after a confirmation page.

    def _confirmed(
        self,
        request,
        queryset,
        *,
        title: str,
        consequence: str,
        service,
        done: str,
        asks_reason: bool = False,
    ):
        if request.POST.get("confirmed") == "yes":
            kwargs = {"reason": request.POST.get("reason", "").strip()[:500]} if asks_reason else {}
            self._each(request, queryset, service, done, **kwargs)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "consequence": consequence,
            "platforms": queryset,
            "action": request.POST.get("action"),
            "asks_reason": asks_reason,
            "opts": self.model._meta,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/provisioning/platform/confirm_action.html", context)

    @admin.action(description="Suspend…", permissions=["change"])
    def suspend_platforms(self, request, queryset):
        return self._confirmed(
            request,
            queryset,
            title="Suspend these platforms?",
            consequence="Nothing is deleted. The customer sees the platform suspended, with the "
            "reason below, and cannot configure or validate it until it is resumed.",
            service=services.platform_suspend,
            done="suspended",
            asks_reason=True,
        )

    @admin.action(description="Resume…", permissions=["change"])
    def resume_platforms(self, request, queryset):
        return self._confirmed(
            request,
            queryset,
            title="Resume these platforms?",
            consequence="Each goes back to the state it was suspended in, and its work resumes.",
            service=services.platform_resume,
            done="resumed",
        )

    @admin.action(description="Terminate…", permissions=["change"])
    def terminate_platforms(self, request, queryset):
        return self._confirmed(
            request,
            queryset,
            title="Terminate these platforms?",
            consequence="This cannot be undone. The DNS records the portal wrote are removed, "
            "the certificate is revoked and its private key destroyed, the customer is told by "
            "email, the platform leaves the customer space; its addresses return to the pools "
            "after the quarantine (ADDRESS_QUARANTINE).",
            service=services.platform_terminate,
            done="terminated",
        )

    @admin.action(
        description="Revoke and replace the certificate (key compromise)", permissions=["change"]
    )
    def revoke_and_replace(self, request, queryset):
        self._each(
            request,
            queryset,
            services.platform_certificate_revoke_replace,
            "certificate revoked, its replacement under way",
        )

    # Resend page: choose which email goes out again.

    def get_urls(self):
        resend = path(
            "<int:platform_id>/resend/",
            self.admin_site.admin_view(self.resend_view),
            name="provisioning_platform_resend",
        )
        chain = path(
            "<int:platform_id>/certificate-chain.pem",
            self.admin_site.admin_view(self.chain_view),
            name="provisioning_platform_chain",
        )
        return [resend, chain, *super().get_urls()]

    def chain_view(self, request, platform_id: int):
        """The issued certificate and its intermediates; never the key."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        platform = get_object_or_404(Platform.objects.select_related("certificate"), pk=platform_id)
        return chain_download(order=platform.certificate)

    def resend_view(self, request, platform_id: int):
        if not self.has_resend_permission(request):
            raise PermissionDenied
        platform = get_object_or_404(Platform, pk=platform_id)
        sent_kinds = selectors.email_kinds_resendable(platform)
        if request.method == "POST":
            kind = request.POST.get("kind", "")
            if kind not in sent_kinds:
                self.message_user(request, "Choose one of the emails sent.", messages.ERROR)
            else:
                self._each(
                    request,
                    [platform],
                    services.platform_email_resend,
                    f"{kind} email resent",
                    kind=kind,
                    address=request.POST.get("address") or None,
                )
                return redirect("admin:provisioning_platform_change", platform.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Resend an email of {platform.service}",
            "platform": platform,
            "kinds": sent_kinds,
            "addresses": validation_addresses(platform.domain) if platform.domain else [],
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/provisioning/platform/resend.html", context)

    def render_change_form(self, request, context, *args, **kwargs):
        context["can_resend"] = self.has_resend_permission(request)
        return super().render_change_form(request, context, *args, **kwargs)


class BrokenRecordsFilter(admin.SimpleListFilter):
    title = "broken records"
    parameter_name = "broken"

    def lookups(self, request, model_admin):
        return [("yes", "Some missing or wrong"), ("no", "None")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(records_bad__gt=0)
        if self.value() == "no":
            return queryset.filter(records_bad=0)
        return queryset


class DomainEmailInline(EmailInline):
    verbose_name_plural = "Records emails"


@admin.register(Domain)
class DomainAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "name",
        "platform",
        "mode",
        "state",
        "dns_assist",
        "assist_status",
        "checked_at",
    ]
    list_filter = ["state", "mode", BrokenRecordsFilter, "dns_assist"]
    search_fields = ["name", "platform__service", "platform__account__nic"]
    list_select_related = ["platform"]
    fields = [
        "name",
        "platform",
        "zone",
        "mode",
        "relay_host",
        "state",
        "message",
        "dns_assist",
        "assist_status",
        "records_summary",
        "checked_at",
        "next_check_at",
        "removed_at",
    ]
    readonly_fields = fields
    inlines = [DomainEmailInline]
    actions = ["resend_records_email", "check_now"]

    @admin.display(description="Records")
    def records_summary(self, domain):
        return domain_records_summary(domain)

    def has_resend_permission(self, request):
        return request.user.has_perm("provisioning.resend_email")

    def has_check_permission(self, request):
        return request.user.has_perm("provisioning.change_platform")

    def _each(self, request, queryset, service, done: str):
        actor = f"staff:{request.user.get_username()}"
        for domain in queryset:
            try:
                service(domain_id=domain.pk, actor=actor)
            except PortalError as error:
                self.message_user(request, f"{domain}: not possible — {error}", messages.ERROR)
            else:
                self.message_user(request, f"{domain}: {done}.", messages.SUCCESS)

    @admin.action(description="Resend the records email", permissions=["resend"])
    def resend_records_email(self, request, queryset):
        self._each(request, queryset, services.domain_records_email_resend, "records email resent")

    @admin.action(description="Check the records now", permissions=["check"])
    def check_now(self, request, queryset):
        self._each(request, queryset, services.domain_check_now, "checked")
