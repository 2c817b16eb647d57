"""Entry point the Pulumi CLI runs for ``--policy-pack policy`` and ``pulumi policy publish``.

It only builds the ``PolicyPack``; constructing it starts the analyzer server, which never
returns, so nothing (tests included) should import this module. The policies live in the
``guardrails`` package next to this file.
"""

from guardrails import PACK_ENFORCEMENT_LEVEL, PACK_NAME, POLICIES
from pulumi_policy import PolicyPack

PolicyPack(
    name=PACK_NAME,
    policies=POLICIES,
    enforcement_level=PACK_ENFORCEMENT_LEVEL,
)
