"""The dotnet-delivery CrossGuard policy pack.

The policies live in :mod:`policy.guardrails` (``POLICIES``) so tests and other programs can
import and run them without the Pulumi CLI. ``policy/__main__.py`` only builds the
``PolicyPack`` for ``pulumi preview --policy-pack policy`` / ``pulumi policy publish``;
importing this package never starts the policy server.
"""
