"""The environment deploy role: created iff the environment's account differs from the tooling
account, decided per environment (a mixed setup: dev shares the tooling account, stage and prod
do not)."""

from __future__ import annotations

import json
from pathlib import Path

from components.testing import engine as engine_mod

ROOT = Path(__file__).resolve().parent.parent
TOOLING = "111111111111"
DEV = "222222222222"


def _mixed(stack: str) -> engine_mod.Recording:
    """``stack`` rendered with dev moved into the tooling account (stage/prod stay apart)."""
    text = (ROOT / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8")
    line = f'dev: "{DEV}"'
    assert line in text, f"Pulumi.{stack}.yaml no longer lists {line}"
    text = text.replace(line, f'dev: "{TOOLING}"')
    if stack == "dev":  # dev's own resources (secret, certificate ARNs) move with it
        text = text.replace(DEV, TOOLING)
    return engine_mod.render(stack, stack_file=engine_mod.parse_stack_file(text))


def test_environment_in_the_tooling_account_gets_no_deploy_role() -> None:
    rec = _mixed("dev")
    assert rec.find("aws:iam/role:Role", {"name": "orders-api-dev-deploy"}) == []
    assert "deployRoleArn" not in rec.exports
    assert not [r for r in rec if "deploy-role" in r.urn]


def test_other_environments_of_a_mixed_setup_still_get_their_deploy_role() -> None:
    rec = _mixed("stage")
    roles = rec.find("aws:iam/role:Role", {"name": "orders-api-stage-deploy"})
    assert len(roles) == 1
    assert "deployRoleArn" in rec.exports
    trust = json.loads(roles[0].inputs["assumeRolePolicy"])
    principals = [s["Principal"]["AWS"] for s in trust["Statement"]]
    assert principals and all(f":{TOOLING}:" in json.dumps(p) for p in principals), trust
