"""The board's queries read indexes only (measured at 1M leads / 10k open handoffs, docs/board.md):

- handoff_open_owner_idx: the three column counts are an index-only scan (stage, owner) instead of a
  bitmap heap scan over ~1,200 table pages (9 ms -> 1.5 ms for a manager, 0.2 ms for an SDR);
- handoff_{mql,sal,sql}_queue_idx: each open column's page is the first entries of its own queue,
  in the board's order, with the owner included so "mine" / "unassigned" filter inside the index
  (SAL and SQL were a scan + sort of the whole column: 2.5-4 ms -> 0.1 ms);
- handoff_rejected_idx: the recycled / disqualified view's columns, newest first, owner included
  (a manager's page was a backward walk of every closed handoff: 60-150 ms -> under 1 ms).

The open ones are partial on open handoffs, so they stay as small as the board itself.
"""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("handoff", "0007_transition_append_only"),
        ("leads", "0006_rescore_flag_to_requests"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddIndex(
            model_name="handoff",
            index=models.Index(
                condition=models.Q(("closed_at__isnull", True)),
                fields=["stage", "assignee"],
                name="handoff_open_owner_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="handoff",
            index=models.Index(
                condition=models.Q(("closed_at__isnull", True), ("stage", "mql")),
                fields=["sla_due_at", "created_at", "id"],
                include=("assignee",),
                name="handoff_mql_queue_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="handoff",
            index=models.Index(
                condition=models.Q(("closed_at__isnull", True), ("stage", "sal")),
                fields=["accepted_at", "id"],
                include=("assignee",),
                name="handoff_sal_queue_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="handoff",
            index=models.Index(
                condition=models.Q(("closed_at__isnull", True), ("stage", "sql")),
                fields=["qualified_at", "id"],
                include=("assignee",),
                name="handoff_sql_queue_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="handoff",
            index=models.Index(
                condition=models.Q(("closed_at__isnull", False), ("stage__in", ["recycled", "disqualified"])),
                fields=["stage", "closed_at", "id"],
                include=("assignee",),
                name="handoff_rejected_idx",
            ),
        ),
    ]
