"""Console forms for routing. Each turns its fields into a fragment of the policy
document (and back, to edit); the document's own validation has the last word."""

from __future__ import annotations

import shlex
from typing import Any

import orjson
from django import forms
from django.core.exceptions import ValidationError

from console.forms import comma_list
from routing.policy.document import DETECTORS, FALLBACK_ON, KINDS, STRATEGIES, VALIDATOR_DEFAULTS

TRISTATE = [("", "Any"), ("yes", "Yes"), ("no", "No")]
TEXTAREA = {"rows": 4, "class": "mono"}


def _lines(value: str) -> list[str]:
    return [line.strip() for line in (value or "").splitlines() if line.strip() and not line.strip().startswith("#")]


def _destination(token: str, kinds: tuple[str, ...]) -> dict[str, str]:
    kind, sep, name = token.partition(":")
    if not sep:
        kind, name = kinds[0], token
    if kind not in kinds or not name:
        raise ValidationError(f"{token!r}: write {' or '.join(k + ':NAME' for k in kinds)}")
    return {kind: name}


def _scalar(raw: str) -> Any:
    lowered = raw.lower()
    if lowered in ("true", "yes", "on"):
        return True
    if lowered in ("false", "no", "off"):
        return False
    for cast in (int, float):
        try:
            return cast(raw)
        except ValueError:
            continue
    return raw


class RouteForm(forms.Form):
    name = forms.CharField(max_length=200, help_text="The model name apps send, e.g. fast or procurement-agent.")
    kind = forms.ChoiceField(choices=[(k, k) for k in KINDS])
    description = forms.CharField(required=False, max_length=500)
    strategy = forms.ChoiceField(choices=[(s, s.replace("_", " ")) for s in STRATEGIES])
    targets = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs=TEXTAREA),
        help_text="One per line: model:NAME [weight] or deployment:NAME [weight].",
    )
    fallbacks = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={**TEXTAREA, "rows": 3}),
        help_text=f"One per line: WHEN ROUTE, where WHEN is {', '.join(FALLBACK_ON)}.",
    )
    max_attempts = forms.IntegerField(min_value=0, max_value=10, initial=0, help_text="0: the gateway default.")
    exploration = forms.FloatField(min_value=0, max_value=0.5, initial=0.05, help_text="least_latency only.")
    deadline = forms.FloatField(
        required=False, min_value=0, max_value=3600, help_text="Seconds for the whole request; 0: the gateway default."
    )
    max_attempts_total = forms.IntegerField(
        required=False, min_value=0, max_value=50, help_text="Attempts across retries and fallbacks; 0: the default."
    )
    ttft_timeout = forms.FloatField(
        required=False, min_value=0, max_value=3600, help_text="Seconds to a stream's first chunk; 0: default."
    )
    stream_idle_timeout = forms.FloatField(
        required=False, min_value=0, max_value=3600, help_text="Seconds a started stream may go silent; 0: default."
    )
    ejection_error_rate = forms.FloatField(
        required=False, min_value=0.01, max_value=1, help_text="Error rate that ejects a deployment; empty: default."
    )
    ejection_min_requests = forms.IntegerField(
        required=False, min_value=1, max_value=10_000, help_text="Outcomes in the window first; empty: default."
    )
    ejection_max_percent = forms.IntegerField(
        required=False, min_value=0, max_value=100, help_text="Most of the route ejected at once, in %; empty: default."
    )
    layers = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs=TEXTAREA),
        help_text="Cascade only, cheapest first. One per line: model:NAME or route:NAME, then validators as "
        "key=value (json, regex, min_length, max_length, refusal, min_confidence).",
    )
    compress_model = forms.CharField(required=False, help_text="Cascade: the model that summarizes older turns.")
    keep_turns = forms.IntegerField(min_value=0, max_value=50, initial=0)

    @staticmethod
    def initial_for(route: dict[str, Any]) -> dict[str, Any]:
        def dest(entry: dict[str, Any], kinds: tuple[str, ...]) -> str:
            kind = next(k for k in kinds if k in entry)
            return f"{kind}:{entry[kind]}"

        layers = []
        for layer in route["layers"]:
            extras = [
                f"{k}={shlex.quote(str(v).lower() if isinstance(v, bool) else str(v))}"
                for k, v in layer["validators"].items()
                if v != VALIDATOR_DEFAULTS[k]
            ]
            layers.append(" ".join([dest(layer, ("model", "route")), *extras]))
        return {
            "name": route["name"],
            "kind": route["kind"],
            "description": route["description"],
            "strategy": route["strategy"],
            "targets": "\n".join(f"{dest(t, ('model', 'deployment'))} {t['weight']}" for t in route["targets"]),
            "fallbacks": "\n".join(f"{f['when']} {f['route']}" for f in route["fallbacks"]),
            "max_attempts": route["max_attempts"],
            "exploration": route["exploration"],
            "layers": "\n".join(layers),
            "compress_model": route["compress"]["model"],
            "keep_turns": route["compress"]["keep_turns"],
            "deadline": route["deadline"],
            "max_attempts_total": route["max_attempts_total"],
            "ttft_timeout": route["ttft_timeout"],
            "stream_idle_timeout": route["stream_idle_timeout"],
            "ejection_error_rate": route["ejection"]["error_rate"],
            "ejection_min_requests": route["ejection"]["min_requests"],
            "ejection_max_percent": route["ejection"]["max_percent"],
        }

    def route(self) -> dict[str, Any]:
        data = self.cleaned_data
        targets, fallbacks, layers = [], [], []
        errors = []
        for line in _lines(data["targets"]):
            parts = line.split()
            try:
                target = _destination(parts[0], ("model", "deployment"))
                target["weight"] = int(parts[1]) if len(parts) > 1 else 1
                targets.append(target)
            except (ValidationError, ValueError) as exc:
                errors.append(f"targets: {line!r}: {getattr(exc, 'message', exc)}")
        for line in _lines(data["fallbacks"]):
            parts = line.split()
            if len(parts) != 2:
                errors.append(f"fallbacks: {line!r}: write WHEN ROUTE")
                continue
            fallbacks.append({"when": parts[0], "route": parts[1]})
        for line in _lines(data["layers"]):
            try:
                parts = shlex.split(line)
                layer = _destination(parts[0], ("model", "route"))
                validators = {}
                for item in parts[1:]:
                    key, sep, value = item.partition("=")
                    if not sep:
                        raise ValidationError(f"{item!r} is not key=value")
                    validators[key] = value if key == "regex" else _scalar(value)
                layers.append({**layer, "validators": validators})
            except (ValidationError, ValueError) as exc:
                errors.append(f"layers: {line!r}: {getattr(exc, 'message', exc)}")
        if errors:
            raise ValidationError(errors)
        return {
            "name": data["name"].strip(),
            "kind": data["kind"],
            "description": data["description"],
            "strategy": data["strategy"],
            "targets": targets,
            "fallbacks": fallbacks,
            "max_attempts": data["max_attempts"] or 0,
            "exploration": data["exploration"] if data["exploration"] is not None else 0.05,
            "layers": layers,
            "compress": {"model": data["compress_model"].strip(), "keep_turns": data["keep_turns"] or 0},
            "deadline": data.get("deadline") or 0.0,
            "max_attempts_total": data.get("max_attempts_total") or 0,
            "ttft_timeout": data.get("ttft_timeout") or 0.0,
            "stream_idle_timeout": data.get("stream_idle_timeout") or 0.0,
            "ejection": {
                "error_rate": data.get("ejection_error_rate"),
                "min_requests": data.get("ejection_min_requests"),
                "max_percent": data.get("ejection_max_percent"),
            },
        }


class RuleForm(forms.Form):
    name = forms.CharField(max_length=100)
    route = forms.CharField(max_length=200, help_text="A route or a model name.")
    enabled = forms.BooleanField(required=False, initial=True)
    models = forms.CharField(required=False, help_text="Only for these requested names (comma-separated); empty: all.")
    keywords = forms.CharField(required=False, help_text="Any of these words in the last user message.")
    pattern = forms.CharField(
        required=False, max_length=1000, help_text="A regular expression on the last user message."
    )
    min_tokens = forms.IntegerField(required=False, min_value=0, help_text="Estimated prompt tokens at least.")
    max_tokens = forms.IntegerField(required=False, min_value=0, help_text="Estimated prompt tokens at most.")
    tools = forms.ChoiceField(choices=TRISTATE, required=False)
    images = forms.ChoiceField(choices=TRISTATE, required=False)
    response_format = forms.ChoiceField(choices=TRISTATE, required=False, label="JSON response format")
    tags = forms.CharField(required=False, help_text="Any of these tags (key tags or x-gatehouse-tags).")
    workflows = forms.CharField(required=False, help_text="x-gatehouse-workflow is one of these.")
    teams = forms.CharField(required=False, help_text="Team names.")
    keys = forms.CharField(required=False, help_text="Key names or prefixes.")
    data_classes = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args: Any, classes: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["data_classes"].choices = [(c, c) for c in classes]

    @staticmethod
    def initial_for(rule: dict[str, Any]) -> dict[str, Any]:
        flag = {True: "yes", False: "no", None: ""}
        initial = {key: rule[key] for key in ("name", "route", "enabled", "pattern", "data_classes")}
        initial.update({key: rule[key] or None for key in ("min_tokens", "max_tokens")})
        lists = ("models", "keywords", "tags", "workflows", "teams", "keys")
        initial.update({key: ", ".join(rule[key]) for key in lists})
        initial.update({key: flag[rule[key]] for key in ("tools", "images", "response_format")})
        return initial

    def rule(self) -> dict[str, Any]:
        data = self.cleaned_data
        flag = {"yes": True, "no": False, "": None}
        rule: dict[str, Any] = {
            "name": data["name"].strip(),
            "route": data["route"].strip(),
            "enabled": data["enabled"],
            "pattern": data["pattern"],
            "min_tokens": data["min_tokens"] or 0,
            "max_tokens": data["max_tokens"] or 0,
            "data_classes": list(data["data_classes"]),
        }
        for key in ("models", "keywords", "tags", "workflows", "teams", "keys"):
            rule[key] = comma_list(data[key])
        for key in ("tools", "images", "response_format"):
            rule[key] = flag[data[key] or ""]
        return rule


class SettingsForm(forms.Form):
    require_approval = forms.BooleanField(
        required=False, label="Require a second admin's approval (four eyes) before a change goes live"
    )
    default_route = forms.CharField(required=False, help_text="Catches requests whose model no route or model names.")
    unlisted_max_class = forms.ChoiceField(
        required=False,
        label="Models missing from the matrix are approved up to",
    )
    classes = forms.CharField(
        widget=forms.Textarea(attrs={**TEXTAREA, "rows": 8}),
        label="Data classes",
        help_text="One per line, least sensitive first: NAME Label. The built-in seven cannot be removed.",
    )

    def __init__(self, *args: Any, classes: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["unlisted_max_class"].choices = [("", "every class (no restriction)")] + [(c, c) for c in classes]
        for kind in DETECTORS:
            self.fields[f"detect_{kind}"] = forms.ChoiceField(
                required=False, label=f"Detector: {kind}", choices=[("", "off")] + [(c, c) for c in classes]
            )

    def detector_fields(self) -> list:
        return [self[f"detect_{kind}"] for kind in DETECTORS]

    @staticmethod
    def initial_for(document: dict[str, Any]) -> dict[str, Any]:
        initial = dict(document["settings"])
        initial["classes"] = "\n".join(f"{c['name']} {c['label']}" for c in document["data_classes"])
        initial.update({f"detect_{kind}": cls for kind, cls in document["detectors"].items()})
        return initial

    def values(self) -> dict[str, Any]:
        data = self.cleaned_data
        classes = []
        for rank, line in enumerate(_lines(data["classes"])):
            name, _, label = line.partition(" ")
            classes.append({"name": name.strip(), "label": label.strip() or name.strip(), "rank": rank})
        return {
            "require_approval": data["require_approval"],
            "default_route": data["default_route"].strip(),
            "unlisted_max_class": data["unlisted_max_class"] or "",
            "data_classes": classes,
            "detectors": {kind: data.get(f"detect_{kind}") or "" for kind in DETECTORS},
        }


class BreakerForm(forms.Form):
    failure_threshold = forms.IntegerField(
        min_value=1,
        max_value=10_000,
        label="Minimum requests",
        help_text="Outcomes in the window before the error rate can eject the deployment.",
    )
    failure_window = forms.FloatField(min_value=0.1, max_value=86_400, label="Window seconds")
    cooldown = forms.FloatField(
        min_value=0.1,
        max_value=86_400,
        label="Base ejection seconds",
        help_text="Doubles, triples... with each ejection in a row, up to the gateway's maximum.",
    )


class DryRunForm(forms.Form):
    request = forms.CharField(
        widget=forms.Textarea(attrs={**TEXTAREA, "rows": 10}),
        initial='{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello"}]}',
        label="Request JSON",
    )
    key = forms.ChoiceField(required=False, label="As key")
    classification = forms.CharField(required=False, label="x-data-classification")
    tags = forms.CharField(required=False, label="x-gatehouse-tags")
    workflow = forms.CharField(required=False, label="x-gatehouse-workflow")
    version = forms.ChoiceField(choices=[("live", "live policy"), ("head", "latest proposal")], required=False)

    def __init__(self, *args: Any, keys: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["key"].choices = [("", "a key with default settings")] + [(str(i), n) for i, n in keys]

    def clean_request(self) -> dict[str, Any]:
        try:
            body = orjson.loads(self.cleaned_data["request"])
        except orjson.JSONDecodeError as exc:
            raise ValidationError(f"Not valid JSON: {exc}") from None
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            raise ValidationError("A JSON object with a model, like a chat completion request.")
        return body


class HealthFilterForm(forms.Form):
    search = forms.CharField(required=False, max_length=200, label="Search")
    provider = forms.ChoiceField(required=False, choices=[("", "All providers")])
    state = forms.ChoiceField(
        required=False,
        choices=[("", "Any state"), ("healthy", "Healthy"), ("ejected", "Ejected"), ("half_open", "Half-open")],
    )

    def __init__(self, *args, providers: list[str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["provider"].choices = [("", "All providers"), *[(p, p) for p in providers]]
