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
