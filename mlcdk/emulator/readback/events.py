"""Read-back of what records and reacts: CloudWatch log groups (key, retention) and EventBridge rules."""
from __future__ import annotations

import json
from collections.abc import Collection

from mlcdk.emulator.readback._view import Clients, Section, StackView


def describe_log_groups(view: StackView) -> None:
    logs = view.clients("logs")
    for resource in view.of_type("AWS::Logs::LogGroup"):
        found = [g for g in logs.describe_log_groups(logGroupNamePrefix=resource.physical)["logGroups"]
                 if g["logGroupName"] == resource.physical]
        if not found:
            continue
        group = found[0]
        view.keep("log groups", group["logGroupName"], f"log group {group['logGroupName']}", resource.logical)
        key = group.get("kmsKeyId", "")
        view.line(f"  log group {group['logGroupName']}: KMS key {key or 'none'}" + (view.key_label(key) if key else "")
                  + f", retention {group.get('retentionInDays', 'never expires')} days")


def log_groups_still_there(clients: Clients, names: Collection[str]) -> set[str]:
    return {g["logGroupName"] for g in clients("logs").describe_log_groups()["logGroups"]} & set(names)


def describe_rules(view: StackView) -> None:
    events = view.clients("events")
    for resource in view.of_type("AWS::Events::Rule"):
        rule = events.describe_rule(Name=resource.physical)
        view.keep("eventbridge rules", rule["Name"], f"EventBridge rule {rule['Name']}", resource.logical)
        targets = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
        pattern = json.loads(rule.get("EventPattern") or "{}")
        detail = pattern.get("detail", {})
        view.line(f"  EventBridge rule {rule['Name']}: {rule.get('State')}; {', '.join(pattern.get('detail-type', []))} "
                  f"with status {'/'.join(detail.get('status', []))} on "
                  f"{', '.join(q.rsplit('/', 1)[-1] for q in detail.get('jobQueue', [])) or 'any queue'}; "
                  f"targets: {', '.join(t['Arn'].rsplit(':', 1)[-1] for t in targets) or 'none'}")


def rules_still_there(clients: Clients, names: Collection[str]) -> set[str]:
    return {r["Name"] for r in clients("events").list_rules()["Rules"]} & set(names)


SECTIONS = (Section("log groups", describe_log_groups, log_groups_still_there),
            Section("eventbridge rules", describe_rules, rules_still_there))
