"""The organisation every example in the API's schemas describes, so that ids and names agree
from one example to the next: Acme's seller Sam Seller owns the Globex renewal, coached by his
manager Mia Manager, under Hanna Head, head of sales; the Umbrella pilot was lost to Initech."""

from __future__ import annotations

ORG_ID = "01a0f67a-3800-70e6-b39c-d5c48f9356c7"
SAM_ID = "01a0fbc2-73e0-7be8-b1db-56b1ebbb7259"
MIA_ID = "01a1010a-afc0-76c7-aaad-f671470b35ee"
HANNA_ID = "01a10652-eba0-7d79-92de-93ea08f7d91e"
ALEX_ID = "01a10b9b-2780-701b-bcc7-20b3af40a848"  # Alex Admin
CRM_MEMBER_ID = "01a10b9b-2781-7c4e-9a0d-4f1b6e2c8d37"  # the HubSpot integration's member
KEY_ID = "01a110e3-6360-75ca-a400-5b740717ba4f"
DEAL_ID = "01a1162b-9f40-7737-a5c0-5405d167155a"
LOST_DEAL_ID = "01a1756f-d500-7a31-8e2d-7c5b9e1f4a60"
STEP_ID = "01a11b73-db20-778e-b5a2-5d80993a5a43"
SUGGESTION_ID = "01a120bc-1700-7c90-ab4c-5ea99b2574c7"
ASSIGNMENT_ID = "01a12604-52e0-7ab0-8ccc-137d58ef30f4"
CALL_ID = "01a12b4c-8ec0-786c-8446-cd3075629866"
INTERVENTION_ID = "01a13094-caa0-7e84-9bc4-08bc1864bfec"
OBSERVATION_ID = "01a135dd-0680-74f8-9ca8-b4090c7befb1"
APPROVAL_ID = "01a13b25-4260-730b-82cb-e46f23754678"
REVIEW_ID = "01a1406d-7e40-7182-a499-256bea391f08"
NOTE_ID = "01a145b5-ba20-77a5-9263-6e3317c1d116"
COMMITMENT_ID = "01a14afd-f600-782b-980a-156e69d3a583"
EVENT_ID = "01a15046-31e0-7b3c-9c91-627ba8885b5f"
ENDPOINT_ID = "01a1558e-6dc0-71f4-bc06-93926a5279db"
DELIVERY_ID = "01a15ad6-a9a0-79f4-829f-12dbccd50d42"
INBOX_ID = "01a1601e-e580-783e-8b52-1bf320f67728"
SKILL_ID = "01a16567-2160-7bf2-82ba-27f18ad2feb5"
LOSS_REASON_ID = "01a16aaf-5d40-7c09-bc0b-5cf428909e1f"

KEY_PREFIX = "dc_3ca33472"
API_KEY = "dc_3ca33472_1_vhegEpOJMy5gX7oGvLgLK2wCeuLZWT6kieDLy67Ng"
WEBHOOK_SECRET = "whsec_Lsz/O9n7y4TX9QxyQhk02/BI9nU+6fCAzZ31zd1nlok="

# Member references as `?expand=members` shows them.
SAM = {"id": SAM_ID, "name": "Sam Seller", "role": "seller"}
MIA = {"id": MIA_ID, "name": "Mia Manager", "role": "manager"}
HANNA = {"id": HANNA_ID, "name": "Hanna Head", "role": "head_of_sales"}

# The story's moments, in order.
ORG_CREATED = "2026-01-12T09:00:00Z"
SAM_JOINED = "2026-01-12T09:15:00Z"
DEAL_CREATED = "2026-10-05T09:30:00Z"
CALL_AT = "2026-11-03T14:00:00Z"
CALL_HELD = "2026-11-03T14:55:00Z"
SHARED_AT = "2026-11-04T09:00:00Z"
ACKNOWLEDGED_AT = "2026-11-04T17:30:00Z"
DEAL_UPDATED = "2026-11-05T16:05:00Z"
LOST_AT = "2026-11-16T11:00:00Z"
REVIEW_DUE = "2026-11-23"

GLOBEX_AMOUNT = {"amount": "48000.00", "currency": "EUR"}
UMBRELLA_AMOUNT = {"amount": "18500.00", "currency": "USD"}

# Where each path parameter of an operation points, in the problem examples' `instance`.
PATH_EXAMPLES = {
    "member_id": SAM_ID,
    "key_id": KEY_ID,
    "code": "negotiation",
    "deal_id": DEAL_ID,
    "source": "hubspot",
    "external_id": "8812739",
    "suggestion_id": SUGGESTION_ID,
    "assignment_id": ASSIGNMENT_ID,
    "call_id": CALL_ID,
    "intervention_id": INTERVENTION_ID,
    "observation_id": OBSERVATION_ID,
    "approval_id": APPROVAL_ID,
    "review_id": REVIEW_ID,
    "commitment_id": COMMITMENT_ID,
    "endpoint_id": ENDPOINT_ID,
    "delivery_id": DELIVERY_ID,
    "provider": "hubspot",
}

# Example bodies that more than one model shows: a model's own example, reused by the models that
# embed it or extend it, so that the two never drift apart.

# Members and keys.
SAM_MEMBER = {
    "id": SAM_ID,
    "organization_id": ORG_ID,
    "name": "Sam Seller",
    "email": "sam.seller@acme.example",
    "role": "seller",
    "manager_id": MIA_ID,
    "active": True,
    "version": 2,
    "created_at": SAM_JOINED,
    "updated_at": "2026-03-02T10:20:00Z",
}
HUBSPOT_SYNC_KEY = {
    "id": KEY_ID,
    "member_id": SAM_ID,
    "prefix": KEY_PREFIX,
    "label": "HubSpot sync",
    "created_at": "2026-10-01T08:00:00Z",
    "revoked_at": None,
}

# Deals.
HUBSPOT_REF = {"source": "hubspot", "external_id": "8812739"}
PRICE_LOSS = {"reason_code": "price", "competitor": "Initech", "detail": "Initech offered 20% below our renewal price"}
GLOBEX_BATCH_RECORD = {
    **HUBSPOT_REF,
    "name": "Globex platform renewal",
    "account_name": "Globex",
    "amount": GLOBEX_AMOUNT,
    "stage": "proposal",
    "owner_id": SAM_ID,
}
GLOBEX_BATCH_RESULT = {
    "index": 0,
    **HUBSPOT_REF,
    "outcome": "created",
    "deal_id": DEAL_ID,
    "problem": None,
}

# The deal strategy.
CFO_STAKEHOLDER = {"name": "Dana Whitfield", "title": "CFO", "role": "economic_buyer", "stance": "supportive"}
NEXT_STEP = {
    "id": STEP_ID,
    "description": "Walk the CFO through the business case",
    "assignee_id": SAM_ID,
    "due_date": "2026-11-30",
    "status": "open",
}
STRATEGY = {
    "customer_objectives": "Cut month-end close from 9 days to 4",
    "decision_process": "The CFO signs off after a security review by IT; procurement negotiates the contract",
    "stakeholders": [
        CFO_STAKEHOLDER,
        {"name": "Raj Patel", "title": "Head of IT", "role": "influencer", "stance": "neutral"},
    ],
    "competition": "Initech, on price",
    "value_hypothesis": "Five days saved at each close frees two FTE in finance",
    "risks": ["Procurement joins late"],
    "next_steps": [NEXT_STEP],
}

# Approvals.
PRICE_HOLD_TERM = {
    "kind": "price_hold",
    "description": "Hold the 2026 list price for the Globex renewal",
    "value": "EUR 48,000 / year",
    "applies_to": "The renewal only; expansion orders are priced at list",
    "valid_until": "2026-12-31",
}

# Calls and observations.
MIA_ATTENDEE = {"member_id": MIA_ID, "call_role": "observer", "agreed_part": "Observe discovery questions"}
DISCOVERY_STRENGTH = {"skill_code": "discovery", "note": "Open questions uncovered the month-end pain"}
NEGOTIATION_IMPROVEMENT = {
    "skill_code": "negotiation",
    "note": "Pricing came up before the value was agreed",
    "suggestion": "Confirm the business case before quoting",
}
COMMITMENT_ITEM = {"text": "Confirm the business case before pricing", "skill_code": "negotiation"}

# Closed-lost reviews.
ACTION_ITEM = {
    "description": "Rehearse the pricing conversation with enablement",
    "assignee_id": SAM_ID,
    "due_date": "2026-12-15",
}
LEADERSHIP_NOTE = {
    "id": NOTE_ID,
    "review_id": REVIEW_ID,
    "author_id": HANNA_ID,
    "note": "Good depth on root cause; push the product feedback to the roadmap review",
    "created_at": "2026-11-21T08:30:00Z",
}
WEEKLY_REVIEW = {
    "id": REVIEW_ID,
    "deal_id": LOST_DEAL_ID,
    "deal_name": "Umbrella analytics pilot",
    "owner_id": SAM_ID,
    "amount": UMBRELLA_AMOUNT,
    "status": "completed",
    "due_on": REVIEW_DUE,
    "overdue": False,
}
WEEKLY_GROUP = {
    "reviewer_id": MIA_ID,
    "pending": 0,
    "completed": 1,
    "overdue": 0,
    "lost_amounts": [UMBRELLA_AMOUNT],
    "reviews": [WEEKLY_REVIEW],
}

# Seller development.
COMMITMENT = {
    "id": COMMITMENT_ID,
    "member_id": SAM_ID,
    "source": "observation",
    "source_id": OBSERVATION_ID,
    "deal_id": DEAL_ID,
    "text": "Confirm the business case before pricing",
    "skill_code": "negotiation",
    "due_on": None,
    "status": "open",
    "overdue": False,
    "note": None,
    "version": 1,
    "created_at": ACKNOWLEDGED_AT,
    "closed_at": None,
}
NEGOTIATION_PROFILE = {
    "skill_code": "negotiation",
    "strengths": 1,
    "improvements": 3,
    "loss_gaps": 1,
    "last_recognised_at": "2026-09-14T10:00:00Z",
    "last_improvement_at": SHARED_AT,
    "trend": "needs_attention",
}
COMMITMENT_COUNTS = {"open": 2, "done": 5, "dropped": 1, "overdue": 0}
DEBRIEF_COUNTS = {"shared": 6, "acknowledged": 5, "pending": 1}
REVIEW_COUNTS = {"lost": 2, "completed": 2}
FOCUS_SKILL = {"skill_code": "negotiation", "improvements": 3, "last_improvement_at": SHARED_AT}
LAST_OBSERVATION = {
    "id": OBSERVATION_ID,
    "summary": "Strong discovery with the CFO; hold pricing until the business case is agreed",
    "acknowledged_at": ACKNOWLEDGED_AT,
}
NEGOTIATION_FIGURES = {"skill_code": "negotiation", "strengths": 1, "improvements": 3, "loss_gaps": 1}
SAM_SKILLS = {
    "member_id": SAM_ID,
    "skills": [
        {"skill_code": "discovery", "strengths": 4, "improvements": 0, "loss_gaps": 0},
        NEGOTIATION_FIGURES,
    ],
}

# Analytics.
PRICE_LOSSES = {
    "key": "price",
    "count": 4,
    "lost_amounts": [{"amount": "96500.00", "currency": "EUR"}, UMBRELLA_AMOUNT],
    "review_completion_rate": 0.75,
    "median_days_to_review": 3.5,
}
MIA_COACHING = {
    "manager_id": MIA_ID,
    "deals_involved": 12,
    "late_first_involvement_share": 0.25,
    "calls_attended": 20,
    "takeovers": 2,
    "takeovers_per_call": 0.1,
    "observations_given": 15,
    "strengths_per_improvement": 1.5,
    "debrief_completion_rate": 0.8,
    "reviews_completed": 9,
    "review_completion_rate": 0.9,
    "median_days_to_review": 3.0,
}

# Events and webhooks.
STAGE_CHANGED_EVENT = {
    "id": EVENT_ID,
    "seq": 1842,
    "type": "deal.stage_changed",
    "actor_id": SAM_ID,
    "deal_id": DEAL_ID,
    "subject_type": "deal",
    "subject_id": DEAL_ID,
    "data": {"from": "discovery", "to": "proposal", "reopened": False},
    "occurred_at": DEAL_UPDATED,
}
WEBHOOK_ENDPOINT = {
    "id": ENDPOINT_ID,
    "url": "https://hooks.acme.example/dealcoach",
    "event_types": ["deal.*", "review.completed"],
    "description": "Deal updates for the revenue dashboard",
    "active": True,
    "disabled_reason": None,
    "version": 1,
    "created_at": "2026-10-01T08:30:00Z",
    "updated_at": "2026-10-01T08:30:00Z",
}

# The HubSpot integration and what CRMs send.
HUBSPOT_CREDENTIALS = {
    "client_secret": "4f1c2b7e-93d1-4f7a-b2f6-0d8e5c1a9b37",
    "access_token": "pat-eu1-7c9a1e52-0b6f-4d3e-9a84-2f51c7d0e6b9",
}
HUBSPOT_MAPPING = {
    "stage_map": {
        "appointmentscheduled": "discovery",
        "presentationscheduled": "proposal",
        "closedlost": "closed_lost",
    },
    "owner_map": {"18487521": SAM_ID},
    "loss_reason_map": {"Too expensive": "price"},
    "default_currency": "EUR",
}
INBOUND_RECEIPT = {
    "id": INBOX_ID,
    "provider_event_id": "12882925:4126395061",
    "outcome": "pending",
    "duplicate": False,
}
PIPEDRIVE_META = {
    "id": "c5a9e1d2-4b7f-4e3a-8d6c-1f2e3a4b5c6d",
    "action": "change",
    "entity": "deal",
    "entity_id": "4711",
    "company_id": "9876543",
    "timestamp": "2026-11-05T16:04:55Z",
    "version": "2.0",
}
