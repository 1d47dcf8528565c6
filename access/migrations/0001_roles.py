"""The role groups of access.roles.ROLES, created on migrate.

Django creates permissions in post_migrate, after every migration has run, so on a fresh
database the custom ones (campaigns.start_campaign, compliance.lift_suppression, ...) would not
exist yet here: create them first, with this migration's historical models.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

from access.roles import ROLES, roles_setup


def create_roles(apps, schema_editor):
    using = schema_editor.connection.alias if schema_editor is not None else "default"
    for app_config in apps.get_app_configs():
        # Historical app configs have no models module, and create_permissions skips those.
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, using=using, apps=apps)
        app_config.models_module = None
    roles_setup(registry=apps)


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("campaigns", "0010_roles_archive"),
        ("compliance", "0005_permissions_sender_archive_erasure"),
        ("telephony", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
