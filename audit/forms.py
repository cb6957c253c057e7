from __future__ import annotations

from django import forms


class LookupForm(forms.Form):
    request_id = forms.CharField(
        max_length=100, label="Request id", help_text="x-request-id of a /v1 request, or event:<id>"
    )


class ExportForm(forms.Form):
    since = forms.DateTimeField(label="From", widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    until = forms.DateTimeField(label="Until", widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))

    def clean(self):
        data = super().clean()
        if data.get("since") and data.get("until") and data["until"] <= data["since"]:
            raise forms.ValidationError("'Until' must be after 'From'.")
        return data


class TrailFilterForm(forms.Form):
    action = forms.CharField(max_length=100, required=False, label="Action", help_text="e.g. key.create")
    actor = forms.CharField(max_length=200, required=False, label="Who")
    since = forms.DateField(required=False, label="Since", widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, label="Until", widget=forms.DateInput(attrs={"type": "date"}))
