"""The Support group: view access to platforms, their events and emails, and the one
custom permission to resend service emails."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

SUPPORT_PERMISSIONS = [
    ("provisioning", "view_platform"),
    ("provisioning", "view_platformevent"),
    ("provisioning", "view_account"),
    ("provisioning", "resend_email"),
    ("notifications", "view_email"),
]


def create_support_group(apps, schema_editor):
    # Permissions are normally made after all migrations; this one needs them now.
    for app_label in ("provisioning", "notifications"):
        app_config = apps.get_app_config(app_label)
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name="Support")
    for app_label, codename in SUPPORT_PERMISSIONS:
        group.permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )


def remove_support_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name="Support").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("provisioning", "0002_platform_dns_certificate_stages"),
        ("notifications", "0002_email_sender"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_support_group, remove_support_group)]
