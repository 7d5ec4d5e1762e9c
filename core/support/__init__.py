"""The support workflow, once for every platform: feedback, escalate, forward, relay, close, teach.

The core decides *what* happens when a conversation goes to a person; each adapter only
says *how* it shows up on its platform by implementing :class:`SupportChannel` (post an
escalation, post under it, send to the customer, mark it closed). Everything with rules —
locking, the customer's language, transcripts, who counts as an agent, what happens when a
post fails, keeping the database off the event loop — lives here and is tested here.
"""

from core.support.agents import ANY_MEMBER, AgentAllowlist
from core.support.channel import DeliveryFailed, SupportChannel
from core.support.claims import EVENT_ID_RETENTION_S, EventClaims
from core.support.desk import AgentReply, HandoffDesk
from core.support.offload import StoreThread
from core.support.transcript import clip_transcript
from core.support.workflow import (
    FeedbackResult,
    RelayOutcome,
    RelayResult,
    SupportWorkflow,
    TeachOutcome,
    TeachResult,
    scope_names,
)

__all__ = [
    "ANY_MEMBER", "AgentAllowlist", "AgentReply", "DeliveryFailed", "EVENT_ID_RETENTION_S", "EventClaims",
    "FeedbackResult", "HandoffDesk", "RelayOutcome", "RelayResult", "StoreThread", "SupportChannel",
    "SupportWorkflow", "TeachOutcome", "TeachResult", "clip_transcript", "scope_names",
]
