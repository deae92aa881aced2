"""The demo data set behind `manage.py seed_demo`.

Everything here is deterministic: all randomness comes from one `random.Random(seed)` and from Faker
instances seeded with `seed_instance` (never the global `random` or Faker's shared state), and dates
are generated backwards from an anchor (the start of the current hour). The same seed therefore gives
the same people, companies, campaigns and interactions; only the timestamps move with the time you run
it. To keep that true, no random draw may depend on the calendar or on a timestamp (see _created_at).

The data is shaped so later features have something true to show: fit (seniority, company size,
business email) correlates with engagement, so scoring yields a believable MQL rate; campaigns have
realistic spend so cost per SQL means something; leads arrive over six months so cohorts and trends exist.

Records are written with `bulk_create` (a few seconds for the default 3,000 leads) inside one
transaction, so a failed seed leaves the database as it was.
"""

from __future__ import annotations

import itertools
import math
import random
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import ProtectedError
from django.utils import timezone
from faker import Faker

from handoff.models import Handoff, purge_transitions
from leads import roles
from leads.models import Campaign, Interaction, InteractionKind, Lead, Seniority, Source

DEFAULT_SEED = 42
DEFAULT_LEADS = 3000
DEFAULT_PASSWORD = "accord-demo"

HISTORY_DAYS = 182  # about six months
BATCH_SIZE = 1000

Channel = Campaign.Channel


class DemoDataError(Exception):
    """The demo data cannot be seeded; the message says why and what to do."""


# --- Users -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoUser:
    username: str
    first_name: str
    last_name: str
    role: str  # the Django group, or "Superuser"
    is_staff: bool
    starts_at: str  # where this role works, for the logins table


SUPERUSER = "Superuser"

DEMO_USERS = (
    # Marketers and managers work in the admin, so they are staff; SDRs only use the board.
    DemoUser("marketer", "Maya", "Fischer", roles.MARKETER, True, "/admin/"),
    DemoUser("sdr", "Sam", "Ortiz", roles.SDR, False, "/board/"),
    DemoUser("sdr2", "Priya", "Nair", roles.SDR, False, "/board/"),
    DemoUser("manager", "Jordan", "Blake", roles.MANAGER, True, "/reports/"),
    DemoUser("admin", "Ada", "Admin", SUPERUSER, True, "/admin/"),
)
DEMO_USERNAMES = tuple(u.username for u in DEMO_USERS)


# --- Campaigns ---------------------------------------------------------------------------------

# name, channel, spend range, duration range in days. Spend follows what these channels cost a
# mid-size B2B team over a quarter; events are short but expensive, webinars cheap.
CAMPAIGNS = (
    ("Search – brand terms", Channel.SEARCH, (8_000, 20_000), (90, 170)),
    ("Search – lead scoring keywords", Channel.SEARCH, (15_000, 40_000), (60, 150)),
    ("Social – marketing leaders", Channel.SOCIAL, (10_000, 35_000), (45, 120)),
    ("Social – RevOps retargeting", Channel.SOCIAL, (5_000, 18_000), (30, 90)),
    ("B2B Marketing Forum booth", Channel.EVENT, (15_000, 60_000), (2, 3)),
    ("RevOps Summit sponsorship", Channel.EVENT, (15_000, 60_000), (1, 2)),
    ("Webinar: Scoring sales can trust", Channel.WEBINAR, (2_000, 8_000), (21, 28)),
    ("Webinar: From MQL to meeting in a day", Channel.WEBINAR, (2_000, 8_000), (21, 28)),
    ("Content syndication – ebook", Channel.CONTENT, (5_000, 20_000), (45, 90)),
    ("Content syndication – benchmark report", Channel.CONTENT, (5_000, 20_000), (30, 75)),
    ("Monthly newsletter", Channel.EMAIL, (800, 1_500), (150, 175)),
    ("Partner co-marketing – CRM partners", Channel.PARTNER, (3_000, 12_000), (60, 120)),
)


# --- Leads -------------------------------------------------------------------------------------

SOURCE_WEIGHTS = {
    Source.INBOUND: 30,
    Source.CONTENT: 20,
    Source.PAID: 18,
    Source.EVENT: 10,
    Source.OUTBOUND: 9,
    Source.REFERRAL: 8,
    Source.PARTNER: 5,
}

# The campaign channels a lead of this source comes from; other sources carry no campaign.
SOURCE_CHANNELS = {
    Source.PAID: (Channel.SEARCH, Channel.SOCIAL),
    Source.EVENT: (Channel.EVENT, Channel.WEBINAR),
    Source.CONTENT: (Channel.CONTENT,),
    Source.PARTNER: (Channel.PARTNER,),
}

# title, seniority, weight. The seniority is what a human would file the title under.
TITLES = (
    ("Marketing Coordinator", Seniority.ENTRY, 5),
    ("Marketing Specialist", Seniority.ENTRY, 5),
    ("Marketing Assistant", Seniority.ENTRY, 2),
    ("Content Marketing Specialist", Seniority.ENTRY, 3),
    ("Marketing Analyst", Seniority.ENTRY, 3),
    ("Sales Development Representative", Seniority.ENTRY, 4),
    ("Account Executive", Seniority.ENTRY, 4),
    ("Business Analyst", Seniority.ENTRY, 2),
    ("Software Engineer", Seniority.ENTRY, 2),
    ("Intern", Seniority.ENTRY, 1),
    ("Student", Seniority.ENTRY, 2),
    ("Marketing Manager", Seniority.MANAGER, 7),
    ("Demand Generation Manager", Seniority.MANAGER, 4),
    ("Marketing Operations Manager", Seniority.MANAGER, 4),
    ("Product Marketing Manager", Seniority.MANAGER, 3),
    ("Sales Manager", Seniority.MANAGER, 3),
    ("Revenue Operations Manager", Seniority.MANAGER, 2),
    ("Growth Manager", Seniority.MANAGER, 2),
    ("CRM Manager", Seniority.MANAGER, 2),
    ("Director of Marketing", Seniority.DIRECTOR, 4),
    ("Head of Marketing", Seniority.DIRECTOR, 4),
    ("Director of Demand Generation", Seniority.DIRECTOR, 2),
    ("Director of Revenue Operations", Seniority.DIRECTOR, 2),
    ("Head of Growth", Seniority.DIRECTOR, 2),
    ("Head of Sales", Seniority.DIRECTOR, 2),
    ("Sales Director", Seniority.DIRECTOR, 2),
    ("VP Marketing", Seniority.VP, 4),
    ("VP Sales", Seniority.VP, 3),
    ("VP Revenue Operations", Seniority.VP, 1),
    ("VP Growth", Seniority.VP, 1),
    ("SVP Marketing", Seniority.VP, 1),
    ("Chief Marketing Officer", Seniority.C_LEVEL, 2),
    ("Chief Revenue Officer", Seniority.C_LEVEL, 1.5),
    ("CEO", Seniority.C_LEVEL, 1.5),
    ("Founder & CEO", Seniority.C_LEVEL, 1.5),
    ("Co-founder", Seniority.C_LEVEL, 1),
    ("COO", Seniority.C_LEVEL, 0.5),
)
# People without an employer: free-mail address, no company data.
NO_COMPANY_TITLES = {"Student"}

# (low, high) employees, weight: many tiny companies, a long tail of big ones.
COMPANY_SIZES = (
    ((1, 10), 26),
    ((11, 50), 32),
    ((51, 200), 19),
    ((201, 1000), 14),
    ((1001, 5000), 6),
    ((5001, 50000), 3),
)

# industry, weight, typical revenue per employee (the product sells to software companies first).
INDUSTRIES = (
    ("Software", 30, 200_000),
    ("Financial Services", 10, 300_000),
    ("Professional Services", 10, 150_000),
    ("Manufacturing", 9, 250_000),
    ("Healthcare", 8, 150_000),
    ("Retail", 7, 180_000),
    ("Media", 6, 180_000),
    ("Education", 5, 80_000),
    ("Logistics", 5, 200_000),
    ("Telecommunications", 4, 350_000),
    ("Real Estate", 3, 250_000),
    ("Nonprofit", 3, 70_000),
)

# ISO country, weight, Faker locale for names and companies, local top-level domain.
COUNTRIES = (
    ("US", 34, "en_US", "com"),
    ("GB", 12, "en_GB", "co.uk"),
    ("DE", 10, "de_DE", "de"),
    ("IN", 8, "en_IN", "in"),
    ("CA", 6, "en_CA", "ca"),
    ("FR", 6, "fr_FR", "fr"),
    ("NL", 5, "nl_NL", "nl"),
    ("AU", 5, "en_AU", "com.au"),
    ("ES", 4, "es_ES", "es"),
    ("SE", 3, "sv_SE", "se"),
    ("IE", 3, "en_IE", "ie"),
    ("CH", 2, "de_CH", "ch"),
)

FREE_MAIL_DOMAINS = (("gmail.com", 60), ("outlook.com", 25), ("yahoo.com", 15))
# Share of people with a job who still sign up with a private address (students always do);
# with ~2% students this gives ~8% free-mail leads overall.
FREE_MAIL_SHARE = 0.065


# --- Interactions ------------------------------------------------------------------------------

PAGES = (
    ("/", 10),
    ("/product", 8),
    ("/product/scoring", 6),
    ("/product/handoff-board", 5),
    ("/integrations", 4),
    ("/customers", 4),
    ("/blog/what-is-an-mql", 6),
    ("/blog/lead-scoring-models", 5),
    ("/blog/sales-marketing-sla", 4),
    ("/docs/api", 2),
    ("/about", 2),
    ("/careers", 1),
)
ASSETS = (
    ("The MQL handbook", "ebook"),
    ("Buyer intent signals, explained", "ebook"),
    ("Lead scoring benchmark 2025", "whitepaper"),
    ("The service-level agreement between sales and marketing", "whitepaper"),
    ("How Northwind cut speed-to-lead to nine minutes", "case_study"),
)
NEWSLETTER_LINKS = ("/blog/what-is-an-mql", "/blog/lead-scoring-models", "/customers", "/pricing")

# Kinds an ordinary session is made of; pricing views grow with intent (see _session_kind).
# demo_request, contact_sales and unsubscribe are rare, once-per-lead events placed separately.
KIND_SLUGS = (
    "page_view",
    "pricing_page_view",
    "content_download",
    "webinar_attended",
    "email_click",
    "demo_request",
    "contact_sales",
    "unsubscribe",
)

# The interaction that made each source's lead appear (form fill, webinar, follow-up email...).
FIRST_KIND = {
    Source.INBOUND: "page_view",
    Source.CONTENT: "content_download",
    Source.PAID: "page_view",
    Source.EVENT: "email_click",  # the post-event follow-up; webinar leads get webinar_attended
    Source.OUTBOUND: "email_click",
    Source.REFERRAL: "page_view",
    Source.PARTNER: "page_view",
}

# Interactions per lead: lognormal, so most leads have a handful and engaged ones many.
# Calibrated for ~12 per lead on average over the default data set.
INTERACTIONS_MU = 2.13
INTERACTIONS_SIGMA = 0.85
MAX_INTERACTIONS = 160


# --- Result ------------------------------------------------------------------------------------


@dataclass
class SeedResult:
    seed: int
    users: list[DemoUser]
    campaigns: int
    leads: int
    interactions: int
    handoffs: int
    leads_by_source: dict[str, int]
    wiped: dict[str, int] = field(default_factory=dict)


# --- Entry points ------------------------------------------------------------------------------


def existing_data() -> list[str]:
    """What already in the database would clash with (or be mixed into) the demo data."""
    found = []
    if n := Lead.objects.count():
        found.append(f"{n} leads")
    if n := Campaign.objects.count():
        found.append(f"{n} campaigns")
    users = list(
        get_user_model()
        .objects.filter(username__in=DEMO_USERNAMES)
        .order_by("username")
        .values_list("username", flat=True)
    )
    if users:
        found.append("demo users " + ", ".join(users))
    return found


@transaction.atomic
def seed_demo(
    *,
    seed: int = DEFAULT_SEED,
    password: str = DEFAULT_PASSWORD,
    leads: int = DEFAULT_LEADS,
    force: bool = False,
    now: datetime | None = None,
) -> SeedResult:
    """Fill the database with the demo data set; all or nothing.

    Refuses (DemoDataError) when leads, campaigns or demo users exist, unless `force`, which first
    deletes them (see wipe_demo_data).
    """
    found = existing_data()
    wiped = {}
    if found:
        if not force:
            raise DemoDataError(
                f"The database is not empty ({'; '.join(found)}). seed_demo only fills an empty "
                "database. Pass --force to delete all leads, interactions, campaigns, handoffs, "
                "transitions and the demo users and seed again."
            )
        wiped = wipe_demo_data()

    # The current hour, not the current second: two runs in the same hour are byte-identical, and
    # nothing generated (all offsets go backwards from here) can lie in the future.
    anchor = (now or timezone.now()).replace(minute=0, second=0, microsecond=0)
    rng = random.Random(seed)
    fakers = _fakers(seed)

    users = create_users(password)
    campaigns = create_campaigns(rng, anchor)
    companies = _companies(rng, fakers, max(20, round(leads * 0.6)))
    sdrs = [users[u.username] for u in DEMO_USERS if u.role == roles.SDR]
    plans = build_leads(rng, fakers, leads, companies, campaigns, sdrs, anchor)
    Lead.objects.bulk_create([p.lead for p in plans], batch_size=BATCH_SIZE)
    interactions = build_interactions(rng, seed, plans, campaigns, anchor)
    Interaction.objects.bulk_create(interactions, batch_size=BATCH_SIZE)
    handoffs = seed_handoff_history(rng=rng, leads=[p.lead for p in plans], users=users, anchor=anchor)

    return SeedResult(
        seed=seed,
        users=list(DEMO_USERS),
        campaigns=len(campaigns),
        leads=len(plans),
        interactions=len(interactions),
        handoffs=handoffs,
        leads_by_source=dict(Counter(p.lead.source for p in plans).most_common()),
        wiped=wiped,
    )


def wipe_demo_data() -> dict[str, int]:
    """Delete all leads, interactions, campaigns, handoffs, transitions and the demo users.

    This is the one sanctioned wipe of demo data (seed_demo --force). Transitions are append-only
    (the model, its queryset and a database trigger refuse deletes); purge_transitions is the
    maintenance path through all of them, used only here, for the whole table, when the operator
    explicitly asked to replace the demo data.
    """
    deleted = {"transitions": purge_transitions()}
    deleted["handoffs"] = Handoff.objects.all().delete()[0]
    # Interactions would go with their leads anyway; one plain DELETE is faster than the collector.
    deleted["interactions"] = Interaction.objects.all()._raw_delete(Interaction.objects.db)
    deleted["leads"] = Lead.objects.all().delete()[0]
    deleted["campaigns"] = Campaign.objects.all().delete()[0]
    try:
        users = get_user_model().objects.filter(username__in=DEMO_USERNAMES)
        deleted["users"] = users.count()
        users.delete()
    except ProtectedError as exc:
        raise DemoDataError(
            f"Cannot delete the demo users: other records still point to them ({exc.args[0]})."
        ) from exc
    return deleted


def seed_handoff_history(*, rng: random.Random, leads: list[Lead], users: dict, anchor: datetime) -> int:
    """Publish the default scoring model and give the demo leads their MQL → SAL → SQL history
    through the real services (see handoff/demo.py); return the handoffs created."""
    from handoff.demo import seed_history

    return seed_history(rng=rng, users=users, anchor=anchor)


# --- Users and campaigns -----------------------------------------------------------------------


def create_users(password: str) -> dict:
    """The demo users, each in the group of its role; returns them by username."""
    User = get_user_model()
    groups = {g.name: g for g in Group.objects.filter(name__in=[roles.MARKETER, roles.SDR, roles.MANAGER])}
    missing = {u.role for u in DEMO_USERS if u.role != SUPERUSER} - set(groups)
    if missing:
        raise DemoDataError(f"Missing groups {', '.join(sorted(missing))}: run `manage.py migrate` first.")

    # One hash for all: they share a password that is printed anyway, and hashing it once instead of
    # five times (PBKDF2 is slow on purpose) saves seconds on every seed.
    encoded = make_password(password)
    users = {}
    for spec in DEMO_USERS:
        fields = {
            "email": f"{spec.username}@accord.example",
            "first_name": spec.first_name,
            "last_name": spec.last_name,
        }
        superuser = spec.role == SUPERUSER
        user = User.objects.create(
            username=spec.username, password=encoded, is_staff=spec.is_staff, is_superuser=superuser, **fields
        )
        if not superuser:
            user.groups.add(groups[spec.role])
        users[spec.username] = user
    return users


def create_campaigns(rng: random.Random, anchor: datetime) -> list[Campaign]:
    """The campaigns, each run (start to end) inside the last six months and finished by today."""
    today = anchor.date()
    campaigns = []
    for name, channel, (spend_low, spend_high), (days_low, days_high) in CAMPAIGNS:
        duration = rng.randint(days_low, days_high)
        # Events end at least a week ago, so their badge-scan leads are already imported.
        latest_end = 7 if channel == Channel.EVENT else 0
        start_offset = rng.randint(duration + latest_end, HISTORY_DAYS - 1)
        starts_on = today - timedelta(days=start_offset)
        spend = Decimal(rng.randint(spend_low, spend_high) // 50 * 50)
        campaigns.append(
            Campaign(
                name=name,
                channel=channel,
                spend=spend,
                starts_on=starts_on,
                ends_on=starts_on + timedelta(days=duration - 1),
            )
        )
    # On PostgreSQL and SQLite (≥ 3.35), the supported databases, bulk_create sets the primary keys.
    return Campaign.objects.bulk_create(campaigns)


# --- Companies and leads -----------------------------------------------------------------------


@dataclass
class _Company:
    name: str
    domain: str
    country: str
    locale: str
    industry: str
    size: int
    revenue: Decimal | None


@dataclass
class LeadPlan:
    """A lead to create, with what its interactions are generated from."""

    lead: Lead
    engagement: float  # latent: drives how many interactions and how much buying intent
    first_kind: str
    age_days: int  # how long ago it appeared, in whole days (independent of the hour of the run)


def _fakers(seed: int) -> dict[str, Faker]:
    fakers = {}
    for index, (_, _, locale, _) in enumerate(COUNTRIES):
        fake = Faker(locale)
        # A different seed per locale: en_US, en_CA and en_AU share name lists and would otherwise
        # produce the same people.
        fake.seed_instance(seed * 100 + index)
        fakers[locale] = fake
    return fakers


def _pick(rng: random.Random, weighted):
    """One item of a sequence of (item..., weight) tuples, chosen by its weight (the tuple's [1])."""
    return rng.choices(weighted, weights=[w[1] for w in weighted])[0]


def _companies(rng: random.Random, fakers: dict[str, Faker], count: int) -> list[_Company]:
    companies, domains = [], set()
    for _ in range(count):
        country, _, locale, tld = _pick(rng, COUNTRIES)
        industry, _, revenue_per_employee = _pick(rng, INDUSTRIES)
        (low, high), _ = _pick(rng, COMPANY_SIZES)
        size = round(math.exp(rng.uniform(math.log(low), math.log(high + 1))))
        size = min(max(size, low), high)
        # Revenue scales with headcount, with the spread real companies have; ~10% is unknown.
        revenue = None
        if rng.random() > 0.10:
            raw = size * revenue_per_employee * rng.lognormvariate(0, 0.35)
            revenue = Decimal(max(10_000, round(raw, -3)))
        name = fakers[locale].company()
        local_tld = tld if rng.random() < 0.7 else "com"
        domain = _unique_domain(rng, _slug(name), local_tld, domains)
        companies.append(_Company(name, domain, country, locale, industry, size, revenue))
    return companies


LEGAL_FORMS = re.compile(
    r"\b(inc|llc|ltd|plc|gmbh|ag|kg|co|corp|group|sa|sas|sarl|bv|nv|ab|hb|kb|and|und|y|et|en|"
    r"stichting|asociados|s\.?coop|sl|pvt|limited|e\.?v|ohg|gbr|mbh)\b\.?"
)


def _slug(company: str) -> str:
    """'Hermighausen AG' → 'hermighausen'; 'Smith, Jones and Brown' → 'smithjones'."""
    words = [w for w in re.split(r"[^a-z0-9]+", LEGAL_FORMS.sub(" ", _ascii(company))) if w]
    return "".join(words[:2]) or "company"


def _unique_domain(rng: random.Random, slug: str, tld: str, taken: set[str]) -> str:
    domain = f"{slug}.{tld}"
    while domain in taken:
        domain = f"{slug}{rng.choice(('hq', 'group', 'labs', 'global', 'tech'))}{rng.randint(2, 99)}.{tld}"
    taken.add(domain)
    return domain


_FOLD = str.maketrans({"ß": "ss", "ø": "o", "æ": "ae", "å": "a", "ł": "l", "đ": "d", "ð": "d"})


def _ascii(text: str) -> str:
    """Lower-case ASCII for email addresses and domains: 'Grégoire Müller' → 'gregoire muller'."""
    text = unicodedata.normalize("NFKD", text.lower().translate(_FOLD))
    return text.encode("ascii", "ignore").decode()


def build_leads(
    rng: random.Random,
    fakers: dict[str, Faker],
    count: int,
    companies: list[_Company],
    campaigns: list[Campaign],
    sdrs: list,
    anchor: datetime,
) -> list[LeadPlan]:
    """Unsaved leads with realistic, mutually consistent attributes."""
    by_channel: dict[str, list[Campaign]] = {}
    for campaign in campaigns:
        by_channel.setdefault(campaign.channel, []).append(campaign)
    # Bigger companies have more people who might sign up, but only mildly so: the lead-level
    # size distribution must stay long-tailed.
    # Cumulative weights, computed once: rng.choices would otherwise re-sum them for every lead.
    company_weights = list(itertools.accumulate(1 + math.log10(c.size) / 4 for c in companies))
    sources = list(SOURCE_WEIGHTS)
    source_weights = list(SOURCE_WEIGHTS.values())
    titles = list(TITLES)
    emails: set[str] = set()
    plans = []

    for _ in range(count):
        source = rng.choices(sources, weights=source_weights)[0]
        company = rng.choices(companies, cum_weights=company_weights)[0]
        title, seniority = _title_for(rng, titles, company.size)
        fake = fakers[company.locale]
        first_name, last_name = fake.first_name(), fake.last_name()
        campaign = _campaign_for(rng, source, by_channel)
        created_at, age_days = _created_at(rng, campaign, anchor)
        lead = Lead(
            first_name=first_name,
            last_name=last_name,
            job_title=title,
            seniority=seniority,
            source=source,
            campaign=campaign,
            # Outbound leads were prospected by an SDR, who keeps them.
            owner=rng.choice(sdrs) if source == Source.OUTBOUND and sdrs else None,
            created_at=created_at,
            stage_changed_at=created_at,
        )
        if title in NO_COMPANY_TITLES:
            lead.country = _pick(rng, COUNTRIES)[0]
            free_mail = True
        else:
            lead.company = company.name
            lead.industry = company.industry
            lead.company_size = company.size
            lead.annual_revenue = company.revenue
            lead.country = company.country
            free_mail = rng.random() < FREE_MAIL_SHARE
        domain = _pick(rng, FREE_MAIL_DOMAINS)[0] if free_mail else company.domain
        lead.email = _unique_email(rng, first_name, last_name, domain, free_mail, emails)

        first_kind = FIRST_KIND[source]
        if campaign is not None and campaign.channel == Channel.WEBINAR:
            first_kind = "webinar_attended"
        plans.append(LeadPlan(lead, _engagement(rng, lead, free_mail), first_kind, age_days))
    return plans


def _title_for(rng: random.Random, titles, size: int) -> tuple[str, str]:
    """A title whose seniority fits the company: founders run small shops, VPs need a large one."""

    def weight(seniority: str, base: float) -> float:
        if seniority == Seniority.C_LEVEL:
            return base * (1.6 if size <= 50 else 0.8 if size <= 1000 else 0.3)
        if seniority == Seniority.VP and size <= 10:
            return base * 0.3
        return base

    title, seniority, _ = rng.choices(titles, weights=[weight(s, w) for _, s, w in titles])[0]
    return title, seniority


def _campaign_for(rng: random.Random, source: str, by_channel: dict) -> Campaign | None:
    channels = [c for c in SOURCE_CHANNELS.get(source, ()) if by_channel.get(c)]
    if not channels:
        return None
    return rng.choice(by_channel[rng.choice(channels)])


def _created_at(rng: random.Random, campaign: Campaign | None, anchor: datetime) -> tuple[datetime, int]:
    """When the lead appeared (during its campaign, else anywhere in the last six months) and its age.

    Determinism across runs at different times: every branch draws the same random numbers whatever
    the calendar says, so the date of the run cannot shift the random stream (and with it every
    lead after this one). The age in days, which sizes the lead's history, is likewise taken before
    the calendar-dependent adjustments.
    """
    today = anchor.date()
    if campaign is None:
        # Slightly more leads recently (the business is growing); fewer on weekends.
        day = today - timedelta(days=int(HISTORY_DAYS * rng.random() ** 1.15))
        move_off_weekend = rng.random() < 0.6
        age_days = (today - day).days
        if day.weekday() >= 5 and move_off_weekend:
            day -= timedelta(days=day.weekday() - 4)  # moved to the Friday before
    elif campaign.channel == Channel.EVENT:
        # Badge scans are imported in the days after the event.
        day = campaign.ends_on + timedelta(days=rng.randint(1, 5))
    elif campaign.channel == Channel.WEBINAR:
        # Attendees are synced on the day of the live session, which ends the campaign.
        day = campaign.ends_on
    else:
        length = (campaign.ends_on - campaign.starts_on).days
        day = campaign.starts_on + timedelta(days=rng.randint(0, length))
    day = min(max(day, today - timedelta(days=HISTORY_DAYS - 1)), today)
    if campaign is not None:
        age_days = (today - day).days
    at = _business_hours(rng, day)
    # Never later than three hours before the anchor, so the lead's first interactions fit.
    return min(at, anchor - timedelta(hours=3, seconds=rng.randint(0, 3600))), age_days


def _business_hours(rng: random.Random, day: date) -> datetime:
    hour = min(max(rng.gauss(14, 3.5), 0), 23.99)
    moment = datetime.combine(day, time(), tzinfo=timezone.get_current_timezone())
    return moment + timedelta(hours=hour, seconds=rng.randint(0, 59))


def _unique_email(rng, first: str, last: str, domain: str, free_mail: bool, taken: set[str]) -> str:
    first, last = _ascii(first).replace(" ", ""), _ascii(last).replace(" ", "")
    first = re.sub(r"[^a-z0-9]", "", first) or "info"
    last = re.sub(r"[^a-z0-9]", "", last) or "contact"
    if free_mail:
        local = rng.choice((f"{first}.{last}", f"{first}{last}", f"{first}.{last}{rng.randint(1, 99)}"))
    else:
        local = rng.choices(
            (f"{first}.{last}", f"{first[0]}{last}", f"{first}", f"{first}_{last}"), weights=(60, 20, 10, 10)
        )[0]
    email = f"{local}@{domain}"
    while email in taken:  # compared lower-case, like the database's unique constraint
        email = f"{first}.{last}{rng.randint(2, 999)}@{domain}"
    taken.add(email)
    return email


def _engagement(rng: random.Random, lead: Lead, free_mail: bool) -> float:
    """A latent engagement level, higher for good fit, so scoring later finds believable MQLs.

    Roughly standard normal: fit explains part of it, the rest is noise (some juniors binge
    content; some CEOs never come back).
    """
    fit = {
        Seniority.ENTRY: 0,
        Seniority.MANAGER: 1,
        Seniority.DIRECTOR: 2,
        Seniority.VP: 3,
        Seniority.C_LEVEL: 3,
    }[lead.seniority]
    size = lead.company_size or 0
    fit += 0 if size <= 10 else 0.5 if size <= 50 else 1 if size <= 200 else 2 if size <= 1000 else 2.5
    fit += 0.5 if lead.industry == "Software" else 0
    fit -= 1.5 if free_mail else 0
    fit -= 2 if lead.job_title in NO_COMPANY_TITLES else 0
    return 0.6 * (fit - 2.5) / 1.6 + rng.gauss(0, 0.8)


# --- Interactions ------------------------------------------------------------------------------


def build_interactions(
    rng: random.Random, seed: int, plans: list[LeadPlan], campaigns: list[Campaign], anchor: datetime
) -> list[Interaction]:
    kinds = {k.slug: k for k in _interaction_kinds()}
    webinars = [c.name for c in campaigns if c.channel == Channel.WEBINAR] or ["Product tour"]
    interactions = []
    for plan in plans:
        for slug, occurred_at, properties in _timeline(rng, plan, webinars, anchor):
            interactions.append(
                Interaction(
                    lead=plan.lead,
                    kind=kinds[slug],
                    occurred_at=occurred_at,
                    properties=properties,
                    # Stable per seed, so a reseed with the same seed reproduces the same keys.
                    external_id=f"demo-{seed}-{len(interactions) + 1}",
                    received_at=occurred_at + timedelta(seconds=rng.randint(1, 8)),
                )
            )
    return interactions


def _interaction_kinds() -> list[InteractionKind]:
    # A migration seeds these; marketers may have relabelled them, and that is kept.
    return [
        InteractionKind.objects.get_or_create(
            slug=slug, defaults={"label": slug.replace("_", " ").capitalize()}
        )[0]
        for slug in KIND_SLUGS
    ]


def _timeline(rng: random.Random, plan: LeadPlan, webinars: list[str], anchor: datetime):
    """(kind, occurred_at, properties) for one lead, in time order, after it appeared, before now."""
    lead, engagement = plan.lead, plan.engagement
    start = lead.created_at
    span = (anchor - timedelta(minutes=5) - start).total_seconds()
    # Young leads have had less time to engage; a two-month-old one has had all it needs.
    age_factor = min(1.0, 0.25 + plan.age_days / 60)
    mean_log = INTERACTIONS_MU + 0.45 * engagement
    count = round(rng.lognormvariate(mean_log, INTERACTIONS_SIGMA) * age_factor)
    count = min(MAX_INTERACTIONS, max(1, count))
    intent = 1 / (1 + math.exp(-(engagement - 0.8) * 1.6))  # 0..1, high for the engaged

    # (kind, occurred_at, properties). Properties are drawn with the kind, before any sorting by time,
    # so the random stream does not depend on the exact timestamps (which follow the hour of the run).
    def event(slug, at):
        return (slug, at, _properties(rng, slug, webinars))

    # The interaction that created the lead, seconds after it appeared.
    events = [event(plan.first_kind, start + timedelta(seconds=rng.randint(1, 30)))]
    # The rest come in browsing sessions: a few events minutes apart, sessions spread over the lead's life.
    remaining = count - 1
    while remaining > 0:
        # Capped so even a long session, started as late as allowed, ends before the anchor.
        size = min(remaining, 1 + int(rng.expovariate(1 / 2.5)), 15)
        at = start + timedelta(seconds=rng.uniform(600, max(601, span - size * 300)))
        for _ in range(size):
            events.append(event(_session_kind(rng, intent), at))
            at += timedelta(seconds=rng.randint(20, 280))
        remaining -= size
    events.sort(key=lambda e: e[1])

    # Hand-raises: rare, once, and late in the journey (after the lead has looked around).
    last = events[-1][1]
    hand_raises = (("demo_request", 0.006 + 0.2 * intent**2), ("contact_sales", 0.003 + 0.06 * intent**2))
    for slug, chance in hand_raises:
        if rng.random() < chance:
            at = _between(rng, events[len(events) // 2][1], last)
            events.append(event(slug, at))
    events.sort(key=lambda e: e[1])
    # Unsubscribing ends the email relationship, so it is the lead's last interaction.
    if rng.random() < 0.05 * (1 - intent):
        events.append(event("unsubscribe", _between(rng, events[-1][1], anchor - timedelta(minutes=1))))
    return events


def _session_kind(rng: random.Random, intent: float) -> str:
    return rng.choices(
        ("page_view", "pricing_page_view", "content_download", "email_click", "webinar_attended"),
        weights=(56, 3 + 10 * intent, 11, 15, 2 + 3 * intent),
    )[0]


def _between(rng: random.Random, low: datetime, high: datetime) -> datetime:
    # Draw even when there is no room, so the random stream does not depend on the timestamps.
    fraction = rng.random()
    return low + max(high - low, timedelta(0)) * fraction


def _properties(rng: random.Random, slug: str, webinars: list[str]) -> dict:
    if slug == "page_view":
        return {"url": _pick(rng, PAGES)[0]}
    if slug == "pricing_page_view":
        return {"url": "/pricing"}
    if slug == "content_download":
        asset, asset_type = rng.choice(ASSETS)
        return {"asset_type": asset_type, "asset": asset}
    if slug == "webinar_attended":
        return {"webinar": rng.choice(webinars), "minutes": rng.randint(5, 60)}
    if slug == "email_click":
        return {"email": "Monthly newsletter", "url": rng.choice(NEWSLETTER_LINKS)}
    if slug == "demo_request":
        return {"url": "/demo"}
    if slug == "contact_sales":
        return {"url": "/contact-sales"}
    if slug == "unsubscribe":
        return {"list": "newsletter"}
    return {}
