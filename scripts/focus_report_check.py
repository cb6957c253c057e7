"""Read a focus-validator console report and decide whether the export conforms.

The validator exits 0 whatever the result, and it also lists as failed the alternative
of an "either / or" rule that the data did not take (for example InvoiceId-C-004-C,
"MUST be null", when its parent InvoiceId-C-003-C passed through InvoiceId-C-005-C,
"MUST NOT be null"). A failed rule counts unless it is such an alternative of an OR
rule that passed. Run with the validator's own Python: focus_report_check.py REPORT MODEL_JSON
"""

from __future__ import annotations

import json
import re
import sys

RESULT = re.compile(r"^\S+\s+([A-Za-z]+-[A-Z]-\d{3}-[A-Z]): (PASS|FAIL|SKIPPED)")
SUMMARY = re.compile(r"Total:\s*(\d+)\s*\|\s*Pass:\s*(\d+)\s*\|\s*Fail:\s*(\d+)")


def or_parents(rules: dict) -> dict[str, list[str]]:
    parents: dict[str, list[str]] = {}
    for rule_id, rule in rules.items():
        requirement = (rule.get("ValidationCriteria") or {}).get("Requirement") or {}
        if requirement.get("CheckFunction") != "OR":
            continue
        for item in requirement.get("Items", []):
            if item.get("CheckFunction") == "CheckModelRule":
                parents.setdefault(item["ModelRuleId"], []).append(rule_id)
    return parents


def main(report_path: str, model_path: str) -> int:
    with open(report_path, encoding="utf-8") as handle:
        text = handle.read()
    summary = SUMMARY.search(text)
    if summary is None:
        print("no 'Total | Pass | Fail' line in the report")
        return 1
    results = {}
    for line in text.splitlines():
        match = RESULT.match(line)
        if match:
            results[match.group(1)] = match.group(2)
    with open(model_path, encoding="utf-8") as handle:
        rules = json.load(handle)["ModelRules"]
    parents = or_parents(rules)
    failed = sorted(rule for rule, result in results.items() if result == "FAIL")
    alternatives = [r for r in failed if any(results.get(p) == "PASS" for p in parents.get(r, []))]
    real = [r for r in failed if r not in alternatives]
    total, passed, fails = summary.groups()
    print(f"focus-validator: Total {total} | Pass {passed} | Fail {fails}")
    for rule in alternatives:
        passed_parent = next(p for p in parents[rule] if results.get(p) == "PASS")
        print(f"  not taken: {rule} (an alternative of {passed_parent}, which passed)")
    for rule in real:
        print(f"  FAILED: {rule}")
    return 1 if real else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
