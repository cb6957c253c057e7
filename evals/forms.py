from __future__ import annotations

import json
from decimal import Decimal

from django import forms

from .models import CheckKind, Schedule, TaskClass


class SuiteForm(forms.Form):
    name = forms.CharField(max_length=120)
    task_class = forms.ChoiceField(choices=TaskClass.choices, initial=TaskClass.CLASSIFICATION)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    judge_model = forms.CharField(required=False, max_length=200, help_text="Grades rubric checks.")
    models = forms.CharField(required=False, help_text="Default models for scheduled runs, comma-separated.")
    schedule = forms.ChoiceField(choices=Schedule.choices, required=False)
    pinned = forms.BooleanField(required=False, help_text="Re-run daily and alert when a score drops.")


class ImportForm(forms.Form):
    format = forms.ChoiceField(choices=[("yaml", "YAML"), ("jsonl", "JSONL")])
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 8, "class": "mono"}), required=False)
    upload = forms.FileField(required=False)

    def clean(self):
        data = super().clean()
        upload = data.get("upload")
        if upload is not None:
            if upload.size > 5 * 1024 * 1024:
                raise forms.ValidationError("The file is over 5 MB.")
            try:
                data["text"] = upload.read().decode("utf-8")
            except UnicodeDecodeError:
                raise forms.ValidationError("The file is not UTF-8 text.") from None
        if not (data.get("text") or "").strip():
            raise forms.ValidationError("Paste a suite or choose a file.")
        return data


class CaseForm(forms.Form):
    name = forms.CharField(required=False, max_length=200)
    prompt = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), help_text="The user message.")
    system = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    check_kind = forms.ChoiceField(choices=CheckKind.choices, label="Check")
    check = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "class": "mono"}),
        help_text='JSON, e.g. {"expected": "positive"}, {"pattern": "^\\\\d+$"}, {"schema": {...}}, '
        '{"expected": 42, "tolerance": 0.5}, {"rubric": "...", "reference": "..."}',
    )
    response_format = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2, "class": "mono"}))
    max_tokens = forms.IntegerField(min_value=1, max_value=8192, initial=256)

    def _json(self, name: str, required: bool):
        text = (self.cleaned_data.get(name) or "").strip()
        if not text:
            if required:
                raise forms.ValidationError("Required.")
            return None
        try:
            return json.loads(text)
        except ValueError:
            raise forms.ValidationError("Not valid JSON.") from None

    def clean_check(self):
        value = self._json("check", True)
        if not isinstance(value, dict):
            raise forms.ValidationError("The check is a JSON object.")
        return value

    def clean_response_format(self):
        return self._json("response_format", False)

    def case(self) -> dict:
        data = self.cleaned_data
        messages = [{"role": "system", "content": data["system"]}] if data.get("system") else []
        messages.append({"role": "user", "content": data["prompt"]})
        return {
            "name": data.get("name") or "",
            "messages": messages,
            "response_format": data.get("response_format"),
            "max_tokens": data["max_tokens"],
            "check": {"kind": data["check_kind"], **data["check"]},
        }


class RunForm(forms.Form):
    models = forms.MultipleChoiceField(widget=forms.CheckboxSelectMultiple)
    concurrency = forms.IntegerField(min_value=1, max_value=16, initial=4)

    def __init__(self, *args, model_choices: list[str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["models"].choices = [(m, m) for m in model_choices]


class RecommendForm(forms.Form):
    threshold = forms.DecimalField(
        min_value=0, max_value=1, decimal_places=4, initial=Decimal("0.8"), label="Minimum score (0–1)"
    )
    route = forms.CharField(
        max_length=120, required=False, label="Route name", help_text="Default: <suite>-recommended."
    )


class DiffForm(forms.Form):
    a = forms.CharField()
    b = forms.CharField()
