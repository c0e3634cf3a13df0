"""Local AWS emulator for Berth's tests.

moto (in-process, its own WSGI app) plus a layer in front of it that answers
Cloud Control (`CloudApiService.ListResources` / `GetResource`) and
`account:ListRegions` from moto's live state, enforces STS trust-policy
ExternalId conditions, and injects faults (throttling, rate limits, latency,
AccessDenied, 5xx) configured through a small admin API under `/_berth/`.
"""

__version__ = "0.1.0"

DEFAULT_ACCOUNT_ID = "123456789012"
