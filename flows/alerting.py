"""Alerting recipe (README "Run and schedule"): a Prefect automation that notifies when a run of the
nightly deployment ends Failed or Crashed, the missed-deadline failure included.

    .venv/bin/python -m flows.alerting --webhook-url https://hooks.example.com/...   # JSON POST
    .venv/bin/python -m flows.alerting --block slack-webhook/ops-alerts              # any notification block

`--webhook-url` saves a Custom Webhook notification block `gdpr-sweep-alerts` that POSTs
`{"subject": ..., "text": ...}`; `--block TYPE/NAME` uses a notification block you created (Slack,
Microsoft Teams, email, PagerDuty, ...). Running it again replaces the automation `gdpr-sweep nightly
failed`, so it stays one. The notification names the flow run, its state and the state's message
(the one-line reason, e.g. "deadline missed: 1 blacklist entry ..."), never a person.
"""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from uuid import UUID

from prefect.client.orchestration import get_client

AUTOMATION = "gdpr-sweep nightly failed"
WEBHOOK_BLOCK = "gdpr-sweep-alerts"
NIGHTLY = "gdpr_sweep_nightly/nightly"
SUBJECT = "gdpr-sweep: nightly run {{ flow_run.name }} ended {{ flow_run.state.name }}"
BODY = ("Flow run {{ flow_run.name }} of deployment {{ deployment.name }} ended {{ flow_run.state.name }}: "
        "{{ flow_run.state.message }}")


def save_webhook_block(url: str) -> UUID:
    """A Custom Webhook notification block `gdpr-sweep-alerts` POSTing JSON to `url`."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    block = CustomWebhookNotificationBlock(name=WEBHOOK_BLOCK, url=url, method="POST", headers=None,
                                           cookies=None, json_data={"subject": "{{subject}}", "text": "{{body}}"})
    saved = block.save(WEBHOOK_BLOCK, overwrite=True)  # sync here: called outside an event loop
    assert isinstance(saved, UUID)
    return saved


def block_id(spec: str) -> UUID:
    """The id of the block `TYPE/NAME` (e.g. `slack-webhook/ops-alerts`)."""
    type_slug, _, name = spec.partition("/")
    if not name:
        raise ValueError(f"--block must look like TYPE/NAME (e.g. slack-webhook/ops-alerts), not {spec!r}")
    with get_client(sync_client=True) as client:
        return client.read_block_document_by_name(name, block_type_slug=type_slug).id


def create_alert(notification_block_id: UUID, deployment: str = NIGHTLY) -> UUID:
    """(Re)create the automation: a Failed or Crashed run of `deployment` sends a notification."""
    from prefect.events.actions import SendNotification
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    with get_client(sync_client=True) as client:
        dep = client.read_deployment_by_name(deployment)
        for old in client.read_automations_by_name(AUTOMATION):
            client.delete_automation(old.id)
        trigger = EventTrigger(
            expect={"prefect.flow-run.Failed", "prefect.flow-run.Crashed"},
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={"prefect.resource.id": f"prefect.deployment.{dep.id}",
                           "prefect.resource.role": "deployment"},
            posture=Posture.Reactive, threshold=1, within=timedelta(0))
        automation = AutomationCore(
            name=AUTOMATION, description=f"Notify when a run of {deployment} ends Failed or Crashed",
            trigger=trigger, actions=[SendNotification(block_document_id=notification_block_id,
                                                       subject=SUBJECT, body=BODY)])
        return client.create_automation(automation)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.alerting", description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--webhook-url", help="POST a JSON notification to this URL")
    where.add_argument("--block", help="an existing notification block, TYPE/NAME")
    parser.add_argument("--deployment", default=NIGHTLY, help=f"default {NIGHTLY}")
    args = parser.parse_args(argv)
    try:
        target = save_webhook_block(args.webhook_url) if args.webhook_url else block_id(args.block)
        automation = create_alert(target, args.deployment)
    except Exception as exc:  # an unknown deployment or block, an unreachable server: one line
        print(f"gdpr-sweep: error: cannot create the alert: {type(exc).__name__}: {exc}".splitlines()[0],
              file=sys.stderr)
        return 1
    print(f"automation '{AUTOMATION}' ({automation}) notifies on Failed or Crashed runs of {args.deployment}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
