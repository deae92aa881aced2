"""The demo's scoring model, in the design's JSON shape: the design's example plus the rules a B2B
marketing team would start from. `seed_demo` imports and publishes it."""

DEFAULT_MODEL = {
    "name": "Default B2B",
    "mql_threshold": 60,
    "mql_min_fit": None,
    "fit_rules": [
        {"label": "Decision-maker title", "field": "job_title", "operator": "contains_any",
         "value": ["vp", "head", "director", "chief"], "points": 20},
        {"label": "Mid-market+", "field": "company_size", "operator": "gte", "value": 200, "points": 15},
        {"label": "Target industry", "field": "industry", "operator": "in",
         "value": ["Software", "Financial Services", "Telecommunications"], "points": 10},
        {"label": "Free mail", "field": "email_domain", "operator": "in",
         "value": ["gmail.com", "outlook.com", "yahoo.com"], "points": -10},
        {"label": "Student", "field": "job_title", "operator": "contains_any",
         "value": ["student", "intern"], "points": -30},
    ],
    "behavior_rules": [
        {"label": "Pricing page", "kind": "pricing_page_view", "points": 10, "max_points": 30,
         "half_life_days": 14},
        {"label": "Whitepaper", "kind": "content_download", "points": 8,
         "property": {"key": "asset_type", "operator": "equals", "value": "whitepaper"}},
        {"label": "Webinar attended", "kind": "webinar_attended", "points": 12, "max_points": 24,
         "half_life_days": 30},
        {"label": "Demo request", "kind": "demo_request", "points": 40, "within_days": 90},
        {"label": "Contact sales", "kind": "contact_sales", "points": 30, "within_days": 90},
        {"label": "Site visits", "kind": "page_view", "points": 1, "max_points": 10, "half_life_days": 7},
        {"label": "Email clicks", "kind": "email_click", "points": 2, "max_points": 10, "half_life_days": 14},
        {"label": "Unsubscribed", "kind": "unsubscribe", "points": -25},
    ],
}
