"""manage.py seed_demo — fill an empty database with the demo data set (see docs/demo-data.md)."""

import time

from django.core.management.base import BaseCommand, CommandError

from leads import demo


def positive_int(value):
    number = int(value)
    if number < 1:
        raise ValueError(value)
    return number


class Command(BaseCommand):
    help = (
        "Fill an empty database with deterministic demo data: users, campaigns, leads and their "
        "interactions. Refuses a database that already has leads, campaigns or demo users unless --force."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--seed",
            type=int,
            default=demo.DEFAULT_SEED,
            help=f"Random seed; the same seed gives the same data (default {demo.DEFAULT_SEED}).",
        )
        parser.add_argument(
            "--password",
            default=demo.DEFAULT_PASSWORD,
            help=f"Password of every demo user (default {demo.DEFAULT_PASSWORD!r}).",
        )
        parser.add_argument(
            "--leads",
            type=positive_int,
            default=demo.DEFAULT_LEADS,
            help=f"How many leads to create (default {demo.DEFAULT_LEADS}).",
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="First delete ALL leads, interactions, campaigns, handoffs, transitions and the demo users.",
        )

        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="Seed only an empty database; otherwise say so and succeed (what `make run` uses).",
        )

    def handle(self, *args, seed, password, leads, force, if_empty, **options):
        if if_empty and not force and demo.existing_data():
            self.stdout.write("Demo data already present; not seeding again (use --force to replace it).")
            self._logins(password)
            return
        if not password:
            raise CommandError("--password must not be empty.")
        started = time.monotonic()
        try:
            result = demo.seed_demo(seed=seed, password=password, leads=leads, force=force)
        except demo.DemoDataError as exc:
            raise CommandError(str(exc)) from exc
        self._report(result, password, time.monotonic() - started)

    def _report(self, result, password, seconds):
        out = self.stdout.write
        if result.wiped:
            wiped = ", ".join(f"{n} {what}" for what, n in result.wiped.items())
            out(f"--force: deleted {wiped}.")
        out(self.style.SUCCESS(f"Seeded demo data (seed {result.seed}) in {seconds:.1f} s:"))
        out(
            f"  {len(result.users)} users, {result.campaigns} campaigns, {result.leads:,} leads, "
            f"{result.interactions:,} interactions, {result.handoffs} handoffs"
        )
        shares = ", ".join(
            f"{source} {100 * n / result.leads:.0f}%" for source, n in result.leads_by_source.items()
        )
        out(f"  leads by source: {shares}")
        if not result.handoffs:
            out("  all leads are in stage 'lead' (handoff history is not generated yet)")
        self._logins(password, result.users)

    def _logins(self, password, users=None):
        out = self.stdout.write
        out("")
        out("Demo logins:")
        rows = [("username", "password", "role", "starts at")]
        rows += [(u.username, password, u.role, u.starts_at) for u in (users or demo.DEMO_USERS)]
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        for row in rows:
            out("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
