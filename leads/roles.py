"""The three roles of the design as Django groups, and the permissions each one holds.

Migrations call `sync_roles` so a fresh database has the groups; when a later migration adds models
whose permissions a role needs, it calls `sync_roles` again. Permissions that do not exist yet (their
model's migration has not run) are skipped and picked up by that later call.
"""

MARKETER = "Marketer"
SDR = "SDR"
MANAGER = "Manager"

_CRUD = ("add", "change", "delete", "view")

ROLE_PERMISSIONS: dict[str, set[str]] = {
    # Tunes scoring, owns lead data and campaigns, reads reports; no handoff actions.
    MARKETER: {
        *(f"leads.{a}_lead" for a in _CRUD),
        *(f"leads.{a}_campaign" for a in _CRUD),
        *(f"leads.{a}_interactionkind" for a in _CRUD),
        "leads.view_interaction",
        "leads.import_lead",
        "leads.view_apitoken",
        "leads.add_apitoken",
        "leads.change_apitoken",
        *(f"scoring.{a}_scoringmodel" for a in _CRUD),
        *(f"scoring.{a}_fitrule" for a in _CRUD),
        *(f"scoring.{a}_behaviorrule" for a in _CRUD),
        "scoring.publish_scoringmodel",
        "scoring.view_rescorerun",
        "handoff.view_handoff",
        "handoff.view_transition",
        *(f"handoff.{a}_rejectionreason" for a in _CRUD),
        "handoff.view_reports",
    },
    # Works the board: acts on handoffs assigned to them or unassigned; reads leads.
    SDR: {
        "leads.view_lead",
        "leads.view_interaction",
        "leads.view_campaign",
        "handoff.view_handoff",
        "handoff.work_handoff",
    },
    # Reads everything, reassigns handoffs, reads reports.
    MANAGER: {
        "leads.view_lead",
        "leads.view_campaign",
        "leads.view_interaction",
        "leads.view_interactionkind",
        "leads.view_apitoken",
        "scoring.view_scoringmodel",
        "scoring.view_fitrule",
        "scoring.view_behaviorrule",
        "scoring.view_rescorerun",
        "handoff.view_handoff",
        "handoff.view_transition",
        "handoff.view_rejectionreason",
        "handoff.work_handoff",
        "handoff.reassign_handoff",
        "handoff.view_reports",
    },
}


def sync_roles(apps, schema_editor=None):
    """Create the groups and give each exactly the permissions above that exist."""
    from django.contrib.auth.management import create_permissions

    # Permissions are normally created after migrate; create them now so we can assign them.
    for app_config in apps.get_app_configs():
        saved, app_config.models_module = getattr(app_config, "models_module", None), True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = saved

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, perms in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        wanted = []
        for perm in perms:
            app_label, codename = perm.split(".")
            wanted += Permission.objects.filter(
                content_type__app_label=app_label, codename=codename
            )
        group.permissions.set(wanted)
