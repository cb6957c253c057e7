"""The shape of a routing policy document and its normalization.

`policy_normalize` turns any accepted input (a console form, a YAML file, an
older version) into the one canonical form: every field present, defaults
filled, lists in their defined order. Two documents meaning the same policy are
therefore equal, and `yaml.safe_dump` of the canonical form round-trips exactly.
Problems are collected and raised together, each naming its place
(`routes[2].targets[0].weight: ...`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from console.models import DataClass
from routing.policy.fields import (  # the field parsers every section uses
    NAME_RE,
    _flag,
    _int,
    _label,
    _mapping,
    _name,
    _number,
    _optional_int,
    _Problems,
    _regex,
    _text,
    _texts,
    _tristate,
    _unknown,
)
from routing.policy.requirements import requirements_normalize

KINDS = ("standard", "cascade")
STRATEGIES = ("weighted", "round_robin", "least_latency", "least_busy", "lowest_cost")
FALLBACK_ON = ("any", "context_length", "content_policy")
DETECTORS = ("email", "phone", "card", "ssn", "iban")
BUILTIN_CLASSES = tuple(DataClass.values)  # public ... restricted, lowest rank first
CLASS_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
MAX_ROUTES = 500
MAX_RULES = 200
MAX_TARGETS = 50
MAX_LAYERS = 6
MAX_ATTEMPTS_LIMIT = 10
MAX_ATTEMPTS_TOTAL_LIMIT = 50
MAX_SECONDS = 3600.0
# Per-route reliability settings; 0 (or null for ejection) means the gateway default.
RELIABILITY_DEFAULTS: dict[str, Any] = {
    "deadline": 0.0,
    "max_attempts_total": 0,
    "ttft_timeout": 0.0,
    "stream_idle_timeout": 0.0,
}
EJECTION_DEFAULTS: dict[str, Any] = {"error_rate": None, "min_requests": None, "max_percent": None}

DEFAULT_DETECTORS = {"email": "pii", "phone": "pii", "card": "pci", "ssn": "pii", "iban": "pii"}
VALIDATOR_DEFAULTS: dict[str, Any] = {
    "json": True,
    "regex": "",
    "min_length": 0,
    "max_length": 0,
    "refusal": True,
    "min_confidence": None,
}
RULE_LIST_FIELDS = ("models", "keywords", "tags", "workflows", "teams", "keys", "data_classes")
RULE_FLAG_FIELDS = ("tools", "images", "response_format")


class PolicyError(ValueError):
    """A document that cannot be accepted; `problems` name each place."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


def default_classes() -> list[dict[str, Any]]:
    return [{"name": value, "label": label, "rank": rank} for rank, (value, label) in enumerate(DataClass.choices)]


# A new organization starts safe: models nobody approved carry data up to PII, never
# PHI, PCI or restricted data (and the detector runs, since classes then matter).
SAFE_UNLISTED_MAX_CLASS = "pii"


def policy_empty() -> dict[str, Any]:
    """The policy of an organization that has configured nothing: sensitive classes need approval."""
    return {
        "settings": {"require_approval": False, "default_route": "", "unlisted_max_class": SAFE_UNLISTED_MAX_CLASS},
        "data_classes": default_classes(),
        "detectors": dict(DEFAULT_DETECTORS),
        "routes": [],
        "rules": [],
        "matrix": {},
    }


# --------------------------------------------------------------------------- field helpers


def _settings(value: Any, problems: _Problems) -> dict[str, Any]:
    data = _mapping(value, "settings", problems)
    _unknown(data, {"require_approval", "default_route", "unlisted_max_class"}, "settings", problems)
    return {
        "require_approval": _flag(data.get("require_approval"), "settings.require_approval", problems, default=False),
        "default_route": _text(data.get("default_route"), "settings.default_route", problems),
        "unlisted_max_class": _text(data.get("unlisted_max_class"), "settings.unlisted_max_class", problems),
    }


def _classes(value: Any, problems: _Problems) -> list[dict[str, Any]]:
    if value is None:
        return default_classes()
    if not isinstance(value, list):
        problems.add("data_classes", "expected a list")
        return default_classes()
    classes: list[dict[str, Any]] = []
    seen_names: set[str] = set()
    seen_ranks: set[int] = set()
    for index, entry in enumerate(value):
        path = f"data_classes[{index}]"
        data = _mapping(entry, path, problems)
        _unknown(data, {"name", "label", "rank"}, path, problems)
        name = _text(data.get("name"), f"{path}.name", problems, limit=32)
        if not CLASS_RE.match(name or ""):
            problems.add(f"{path}.name", f"{name!r} is not a class name (lower-case letters, digits, _ and -)")
            continue
        if name in seen_names:
            problems.add(f"{path}.name", f"{name!r} appears twice")
            continue
        rank = _int(data.get("rank"), f"{path}.rank", problems, low=0, high=1000, default=index)
        if rank in seen_ranks:
            problems.add(f"{path}.rank", f"rank {rank} is used twice; ranks order the classes")
            continue
        seen_names.add(name)
        seen_ranks.add(rank)
        label = _text(data.get("label"), f"{path}.label", problems, limit=64) or name
        classes.append({"name": name, "label": label, "rank": rank})
    for builtin in BUILTIN_CLASSES:
        if builtin not in seen_names:
            problems.add("data_classes", f"the built-in class {builtin!r} cannot be removed (keys and headers name it)")
    classes.sort(key=lambda c: c["rank"])
    return classes


def _detectors(value: Any, classes: set[str], problems: _Problems) -> dict[str, str]:
    data = _mapping(value, "detectors", problems) if value is not None else DEFAULT_DETECTORS
    _unknown(data, set(DETECTORS), "detectors", problems)
    out: dict[str, str] = {}
    for kind in DETECTORS:
        cls = _text(data.get(kind, DEFAULT_DETECTORS[kind]), f"detectors.{kind}", problems, limit=32)
        if cls and cls not in classes:
            problems.add(f"detectors.{kind}", f"unknown data class {cls!r}")
            cls = ""
        out[kind] = cls  # "" switches the detector off
    return out


def _destination(data: Mapping[str, Any], path: str, problems: _Problems, *, kinds: tuple[str, ...]) -> dict[str, str]:
    found = [kind for kind in kinds if data.get(kind)]
    if len(found) != 1:
        problems.add(path, f"name exactly one of {', '.join(kinds)}")
        return {kinds[0]: ""}
    kind = found[0]
    return {kind: _name(data.get(kind), f"{path}.{kind}", problems)}


def _validators(value: Any, path: str, problems: _Problems) -> dict[str, Any]:
    data = _mapping(value, path, problems)
    _unknown(data, set(VALIDATOR_DEFAULTS), path, problems)
    out = {
        "json": _flag(data.get("json"), f"{path}.json", problems, default=True),
        "regex": _regex(data.get("regex"), f"{path}.regex", problems),
        "min_length": _int(data.get("min_length"), f"{path}.min_length", problems, low=0, high=10**7, default=0),
        "max_length": _int(data.get("max_length"), f"{path}.max_length", problems, low=0, high=10**7, default=0),
        "refusal": _flag(data.get("refusal"), f"{path}.refusal", problems, default=True),
        "min_confidence": _number(
            data.get("min_confidence"), f"{path}.min_confidence", problems, low=0.0, high=1.0, default=None
        ),
    }
    if out["max_length"] and out["min_length"] > out["max_length"]:
        problems.add(f"{path}.min_length", "larger than max_length")
    return out


def _route(entry: Any, path: str, problems: _Problems) -> dict[str, Any] | None:
    data = _mapping(entry, path, problems)
    known = {
        "name",
        "kind",
        "description",
        "strategy",
        "targets",
        "fallbacks",
        "max_attempts",
        "exploration",
        "layers",
        "compress",
        *RELIABILITY_DEFAULTS,
        "ejection",
        "min_score",
    }
    _unknown(data, known, path, problems)
    before = len(problems.items)
    name = _name(data.get("name"), f"{path}.name", problems)
    kind = data.get("kind") or "standard"
    if kind not in KINDS:
        problems.add(f"{path}.kind", f"{kind!r} is not one of {', '.join(KINDS)}")
        kind = "standard"
    strategy = data.get("strategy") or "weighted"
    if strategy not in STRATEGIES:
        problems.add(f"{path}.strategy", f"{strategy!r} is not one of {', '.join(STRATEGIES)}")
        strategy = "weighted"
    targets = []
    raw_targets = data.get("targets") or []
    if not isinstance(raw_targets, list):
        problems.add(f"{path}.targets", "expected a list")
        raw_targets = []
    for index, target in enumerate(raw_targets[:MAX_TARGETS]):
        tpath = f"{path}.targets[{index}]"
        tdata = _mapping(target, tpath, problems)
        _unknown(tdata, {"model", "deployment", "weight"}, tpath, problems)
        dest = _destination(tdata, tpath, problems, kinds=("model", "deployment"))
        weight = _int(tdata.get("weight"), f"{tpath}.weight", problems, low=0, high=10_000, default=1)
        targets.append({**dest, "weight": weight})
    if len(raw_targets) > MAX_TARGETS:
        problems.add(f"{path}.targets", f"at most {MAX_TARGETS} targets")
    fallbacks = []
    raw_fallbacks = data.get("fallbacks") or []
    if not isinstance(raw_fallbacks, list):
        problems.add(f"{path}.fallbacks", "expected a list")
        raw_fallbacks = []
    seen_when: set[str] = set()
    for index, fallback in enumerate(raw_fallbacks):
        fpath = f"{path}.fallbacks[{index}]"
        fdata = _mapping(fallback, fpath, problems)
        _unknown(fdata, {"when", "route"}, fpath, problems)
        on = fdata.get("when") or "any"
        if on not in FALLBACK_ON:
            problems.add(f"{fpath}.when", f"{on!r} is not one of {', '.join(FALLBACK_ON)}")
            continue
        if on in seen_when:
            problems.add(f"{fpath}.when", f"a second fallback for {on!r}")
            continue
        seen_when.add(on)
        route = _name(fdata.get("route"), f"{fpath}.route", problems)
        if route == name:
            problems.add(f"{fpath}.route", "a route cannot fall back to itself")
        fallbacks.append({"when": on, "route": route})
    fallbacks.sort(key=lambda f: FALLBACK_ON.index(f["when"]))
    layers = []
    compress = {"model": "", "keep_turns": 0}
    if kind == "cascade":
        raw_layers = data.get("layers") or []
        if not isinstance(raw_layers, list) or len(raw_layers) < 2:
            problems.add(f"{path}.layers", "a cascade lists at least two layers, cheapest first")
            raw_layers = raw_layers if isinstance(raw_layers, list) else []
        if len(raw_layers) > MAX_LAYERS:
            problems.add(f"{path}.layers", f"at most {MAX_LAYERS} layers")
        for index, layer in enumerate(raw_layers[:MAX_LAYERS]):
            lpath = f"{path}.layers[{index}]"
            ldata = _mapping(layer, lpath, problems)
            _unknown(ldata, {"model", "route", "validators"}, lpath, problems)
            dest = _destination(ldata, lpath, problems, kinds=("model", "route"))
            if dest.get("route") == name:
                problems.add(f"{lpath}.route", "a cascade cannot contain itself")
            layers.append({**dest, "validators": _validators(ldata.get("validators"), f"{lpath}.validators", problems)})
        cdata = _mapping(data.get("compress"), f"{path}.compress", problems)
        _unknown(cdata, {"model", "keep_turns"}, f"{path}.compress", problems)
        compress = {
            "model": _text(cdata.get("model"), f"{path}.compress.model", problems),
            "keep_turns": _int(
                cdata.get("keep_turns"), f"{path}.compress.keep_turns", problems, low=0, high=50, default=0
            ),
        }
        if targets:
            problems.add(f"{path}.targets", "a cascade routes through its layers; leave targets empty")
    else:
        if not targets:
            problems.add(f"{path}.targets", "a route needs at least one target (a model or a deployment)")
        if data.get("layers"):
            problems.add(f"{path}.layers", "only a cascade route has layers")
    route = {
        "name": name,
        "kind": kind,
        "description": _text(data.get("description"), f"{path}.description", problems, limit=500),
        "strategy": strategy,
        "targets": targets,
        "fallbacks": fallbacks,
        "max_attempts": _int(
            data.get("max_attempts"), f"{path}.max_attempts", problems, low=0, high=MAX_ATTEMPTS_LIMIT, default=0
        ),
        "exploration": _number(
            data.get("exploration"), f"{path}.exploration", problems, low=0.0, high=0.5, default=0.05
        ),
        "layers": layers,
        "compress": compress,
        **_reliability(data, path, problems),
    }
    min_score = _min_score(data.get("min_score"), f"{path}.min_score", problems)
    if min_score is not None:
        if kind == "cascade":
            problems.add(f"{path}.min_score", "a cascade's layers carry their own scores; set min_score on them")
        route["min_score"] = min_score
    return route if len(problems.items) == before else None


def _min_score(value: Any, path: str, problems: _Problems) -> dict[str, Any] | None:
    """`{suite: NAME, score: 0..1}`: targets whose model's latest score on the
    evaluation suite is below (or missing) are skipped, like the compliance matrix."""
    if value is None:
        return None
    data = _mapping(value, path, problems)
    _unknown(data, {"suite", "score"}, path, problems)
    suite = _text(data.get("suite"), f"{path}.suite", problems, limit=120)
    if not suite:
        problems.add(f"{path}.suite", "name the evaluation suite")
    score = _number(data.get("score"), f"{path}.score", problems, low=0.0, high=1.0, default=0.0)
    return {"suite": suite, "score": score}


def _reliability(data: Mapping[str, Any], path: str, problems: _Problems) -> dict[str, Any]:
    """Deadline, retry budget, stream timeouts and ejection settings of one route."""
    out: dict[str, Any] = {}
    for field in ("deadline", "ttft_timeout", "stream_idle_timeout"):
        out[field] = _number(data.get(field), f"{path}.{field}", problems, low=0.0, high=MAX_SECONDS, default=0.0)
    out["max_attempts_total"] = _int(
        data.get("max_attempts_total"),
        f"{path}.max_attempts_total",
        problems,
        low=0,
        high=MAX_ATTEMPTS_TOTAL_LIMIT,
        default=0,
    )
    epath = f"{path}.ejection"
    edata = _mapping(data.get("ejection"), epath, problems)
    _unknown(edata, set(EJECTION_DEFAULTS), epath, problems)
    out["ejection"] = {
        "error_rate": _number(
            edata.get("error_rate"), f"{epath}.error_rate", problems, low=0.01, high=1.0, default=None
        ),
        "min_requests": _optional_int(edata.get("min_requests"), f"{epath}.min_requests", problems, low=1, high=10_000),
        "max_percent": _optional_int(edata.get("max_percent"), f"{epath}.max_percent", problems, low=0, high=100),
    }
    return out


def _rule(entry: Any, path: str, classes: set[str], problems: _Problems) -> dict[str, Any] | None:
    data = _mapping(entry, path, problems)
    known = {"name", "route", "enabled", "pattern", "min_tokens", "max_tokens", *RULE_LIST_FIELDS, *RULE_FLAG_FIELDS}
    _unknown(data, known, path, problems)
    before = len(problems.items)
    rule: dict[str, Any] = {
        "name": _label(data.get("name"), f"{path}.name", problems),
        "route": _name(data.get("route"), f"{path}.route", problems),
        "enabled": _flag(data.get("enabled"), f"{path}.enabled", problems, default=True),
        "pattern": _regex(data.get("pattern"), f"{path}.pattern", problems),
        "min_tokens": _int(data.get("min_tokens"), f"{path}.min_tokens", problems, low=0, high=10**8, default=0),
        "max_tokens": _int(data.get("max_tokens"), f"{path}.max_tokens", problems, low=0, high=10**8, default=0),
    }
    for field in RULE_LIST_FIELDS:
        rule[field] = _texts(data.get(field), f"{path}.{field}", problems)
    for field in RULE_FLAG_FIELDS:
        rule[field] = _tristate(data.get(field), f"{path}.{field}", problems)
    for cls in rule["data_classes"]:
        if cls not in classes:
            problems.add(f"{path}.data_classes", f"unknown data class {cls!r}")
    if rule["max_tokens"] and rule["min_tokens"] > rule["max_tokens"]:
        problems.add(f"{path}.min_tokens", "larger than max_tokens")
    return rule if len(problems.items) == before else None


def _matrix(value: Any, class_order: dict[str, int], problems: _Problems) -> dict[str, list[str]]:
    data = _mapping(value, "matrix", problems)
    out: dict[str, list[str]] = {}
    for subject in sorted(data, key=str):
        path = f"matrix.{subject}"
        if not isinstance(subject, str) or not NAME_RE.match(subject):
            problems.add(path, "expected a model or deployment name")
            continue
        approved = _texts(data[subject], path, problems, limit=32)
        unknown = [cls for cls in approved if cls not in class_order]
        if unknown:
            problems.add(path, f"unknown data class {', '.join(map(repr, unknown))}")
            continue
        out[subject] = sorted(approved, key=class_order.__getitem__)
    return out


def policy_normalize(document: Any) -> dict[str, Any]:
    """The canonical form of a policy document; raises PolicyError listing every problem."""
    problems = _Problems()
    data = _mapping(document, "policy", problems)
    _unknown(
        data, {"settings", "data_classes", "detectors", "routes", "rules", "matrix", "requirements"}, "policy", problems
    )
    settings = _settings(data.get("settings"), problems)
    classes = _classes(data.get("data_classes"), problems)
    class_order = {c["name"]: c["rank"] for c in classes}
    detectors = _detectors(data.get("detectors"), set(class_order), problems)
    routes: list[dict[str, Any]] = []
    raw_routes = data.get("routes") or []
    if not isinstance(raw_routes, list):
        problems.add("routes", "expected a list")
        raw_routes = []
    if len(raw_routes) > MAX_ROUTES:
        problems.add("routes", f"at most {MAX_ROUTES} routes")
    names: set[str] = set()
    for index, entry in enumerate(raw_routes[:MAX_ROUTES]):
        route = _route(entry, f"routes[{index}]", problems)
        if route is None:
            continue
        if route["name"] in names:
            problems.add(f"routes[{index}].name", f"{route['name']!r} appears twice")
            continue
        names.add(route["name"])
        routes.append(route)
    routes.sort(key=lambda r: r["name"])
    rules: list[dict[str, Any]] = []
    raw_rules = data.get("rules") or []
    if not isinstance(raw_rules, list):
        problems.add("rules", "expected a list")
        raw_rules = []
    if len(raw_rules) > MAX_RULES:
        problems.add("rules", f"at most {MAX_RULES} rules")
    rule_names: set[str] = set()
    for index, entry in enumerate(raw_rules[:MAX_RULES]):
        rule = _rule(entry, f"rules[{index}]", set(class_order), problems)
        if rule is None:
            continue
        if rule["name"] in rule_names:
            problems.add(f"rules[{index}].name", f"{rule['name']!r} appears twice")
            continue
        rule_names.add(rule["name"])
        rules.append(rule)
    matrix = _matrix(data.get("matrix"), class_order, problems)
    requirements = requirements_normalize(data.get("requirements"), class_order, problems.add)
    unlisted = settings["unlisted_max_class"]
    if unlisted and unlisted not in class_order:
        problems.add("settings.unlisted_max_class", f"unknown data class {unlisted!r}")
    if problems.items:
        raise PolicyError(problems.items)
    normalized = {
        "settings": settings,
        "data_classes": classes,
        "detectors": detectors,
        "routes": routes,
        "rules": rules,
        "matrix": matrix,
    }
    if requirements:
        # Only when set: documents from before attribute rules stay byte-identical.
        normalized["requirements"] = requirements
    return normalized
