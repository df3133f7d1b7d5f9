"""The work's forms. DoneReportForm is the one check of a "done" report, for the page and the API."""

from __future__ import annotations

import re
from collections.abc import Sequence

import requests
from django import forms
from django.conf import settings

from inversions.models import INVERSION_ID_PATTERN
from inversions.paths import PathRefused, clean_absolute_path
from inversions.services import DoneReport, ReportRefused, check_result_collection
from inversions.transfers import (
    CollectionNotReadable,
    PathNotFound,
    PathOutsideCollection,
    TransferError,
    get_backend,
)
from ops.forms import ProgramFilterForm
from ops.states import State

COMMIT = re.compile(r"^[0-9a-f]{7,40}$")
# What users type to find a commit: its first hexadecimal digits, 4 at least (git's shortest).
COMMIT_PREFIX = re.compile(r"[0-9a-f]{4,40}")


def commit_prefix(text: str) -> str:
    """``text`` as a commit prefix (lowercase hex, 4 to 40 digits); ValueError saying why not."""
    prefix = text.strip().lower()
    if not COMMIT_PREFIX.fullmatch(prefix):
        raise ValueError("A software commit is 4 to 40 hexadecimal digits (0-9, a-f), e.g. 1a2b3c4.")
    return prefix


# The software's commit page is asked once per report; a slow server is reported as such.
COMMIT_CHECK_TIMEOUT_S = 10


class ProgramListForm(ProgramFilterForm):
    """The programs table's filters, with the software commit of each OP's latest inversion.
    Unlike the other filters, a commit that is not one is an error the page shows: leaving it
    out would show every program as if they matched it."""

    commit = forms.CharField(
        label="Commit",
        required=False,  # no max_length: clean_commit refuses a longer one with its own message
        widget=forms.TextInput(attrs={"placeholder": "1a2b3c4", "size": 10, "spellcheck": "false"}),
        help_text="The software commit (or its first digits) of the latest inversion.",
    )

    def clean_commit(self) -> str:
        text = self.cleaned_data["commit"]
        if not text:
            return ""
        try:
            return commit_prefix(text)
        except ValueError as error:
            raise forms.ValidationError(str(error)) from None

    def commit_error(self) -> str:
        """The commit's error, "" when it is a commit or none was given."""
        self.is_valid()
        return " ".join(self.errors.get("commit", []))

    def campaign_filters(self) -> dict[str, str]:
        """The valid filters that choose the OPs, for the campaign form to post again."""
        values = self.filters()
        return {name: values[name] for name in ("commit", "stale", "instrument", "proposal", "q", "sort")}

    def description(self) -> str:
        """The filters in words, for a campaign ("commit 1a2b3c4, stale, proposal pid_2_10")."""
        values = self.filters()
        parts = [f"commit {values['commit']}"] if values["commit"] else []
        if values["stale"]:
            parts.append({"yes": "stale", "no": "not stale"}[values["stale"]])
        parts += [f"{name} {values[name]}" for name in ("instrument", "proposal") if values[name]]
        if values["q"]:
            parts.append(f"search “{values['q']}”")
        return ", ".join(parts)


class ActionForm(forms.Form):
    """Every action's form carries the state the user saw: if the OP moved meanwhile, the
    action is refused and the page says who moved it."""

    expected_state = forms.ChoiceField(choices=State.choices, widget=forms.HiddenInput)


class QueueForm(ActionForm):
    note = forms.CharField(
        required=False, max_length=2000, widget=forms.TextInput(attrs={"placeholder": "optional note"})
    )


class ReasonForm(ActionForm):
    reason = forms.CharField(max_length=2000, widget=forms.TextInput(attrs={"placeholder": "why"}))


class OptionalReasonForm(ActionForm):
    reason = forms.CharField(
        required=False, max_length=2000, widget=forms.TextInput(attrs={"placeholder": "why (optional)"})
    )


class NoteForm(ActionForm):
    text = forms.CharField(
        label="Note",
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "a note for the history"}),
    )


class DoneReportForm(forms.Form):
    """ "Report done": the commit, the result location, the datasets used, notes."""

    software_commit = forms.CharField(
        label="Inversion software commit", max_length=40, help_text="7 to 40 hexadecimal characters."
    )
    result_collection = forms.CharField(
        label="Result collection", max_length=128, help_text="The collection id holding the results."
    )
    result_path = forms.CharField(
        label="Result path",
        max_length=1024,
        help_text=f"The absolute path of the folder with {', '.join(settings.LEVEL2_RESULT_FILES)}.",
    )
    dataset_ids = forms.MultipleChoiceField(
        label="Datasets used",
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one dataset."},
    )
    # The attempt the page was shown for (hidden), so that a page left open while the work was
    # put back and queued again cannot report for the new attempt.
    inversion = forms.RegexField(
        regex=rf"^{INVERSION_ID_PATTERN}\Z",
        required=False,
        widget=forms.HiddenInput,
        error_messages={"invalid": "An inversion id is inv. and 6 characters A-Z or 0-9 (inv.PUYATW)."},
    )
    notes = forms.CharField(
        label="Notes",
        required=False,
        max_length=10000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Optional: what the publisher and later readers should know about this inversion.",
    )

    def __init__(self, *args, dataset_ids: Sequence[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["dataset_ids"].choices = [(dataset_id, dataset_id) for dataset_id in dataset_ids]

    def clean_software_commit(self) -> str:
        commit = self.cleaned_data["software_commit"].strip().lower()
        if not COMMIT.match(commit):
            raise forms.ValidationError("A git commit is 7 to 40 hexadecimal characters (0-9, a-f).")
        template = settings.LEVEL2_SOFTWARE_COMMIT_URL
        if template:
            url = template.format(commit=commit)
            try:
                response = requests.get(url, timeout=COMMIT_CHECK_TIMEOUT_S, allow_redirects=True)
            except requests.RequestException:
                raise forms.ValidationError(
                    f"The software's repository could not be reached to check the commit ({url}); "
                    "try again later."
                ) from None
            if response.status_code == 404:
                raise forms.ValidationError(f"Commit {commit} was not found in the software's repository.")
            if response.status_code != 200:
                raise forms.ValidationError(
                    f"The software's repository answered HTTP {response.status_code} for {url}; "
                    "try again later."
                )
        return commit

    def clean_result_collection(self) -> str:
        """One of LEVEL2_RESULT_COLLECTIONS, checked before the collection is listed."""
        collection = self.cleaned_data["result_collection"].strip()
        try:
            check_result_collection(collection)
        except ReportRefused as error:
            raise forms.ValidationError(str(error)) from None
        return collection

    def clean_result_path(self) -> str:
        """The folder, normalised (``//runs/./7`` is ``/runs/7/``) before anything uses it."""
        path = self.cleaned_data["result_path"].strip()
        if not path.startswith("/"):
            raise forms.ValidationError("Give an absolute path, starting with /.")
        try:
            path = clean_absolute_path(path)
        except PathRefused as error:
            raise forms.ValidationError(str(error)) from None
        return path if path.endswith("/") else path + "/"

    def clean(self):
        cleaned = super().clean()
        collection, path = cleaned.get("result_collection"), cleaned.get("result_path")
        if collection and path:
            try:
                listed = {
                    entry.name for entry in get_backend().list_files(collection, path) if not entry.is_dir
                }
            except (PathNotFound, CollectionNotReadable, PathOutsideCollection) as error:
                self.add_error("result_path", str(error))
            except TransferError as error:
                self.add_error("result_path", f"The result location could not be checked: {error}")
            else:
                missing = [name for name in settings.LEVEL2_RESULT_FILES if name not in listed]
                if missing:
                    self.add_error("result_path", f"{path} on {collection} lacks {', '.join(missing)}.")
        return cleaned

    def report(self) -> DoneReport:
        data = self.cleaned_data
        return DoneReport(
            software_commit=data["software_commit"],
            result_collection=data["result_collection"],
            result_path=data["result_path"],
            dataset_ids=list(data["dataset_ids"]),
            notes=data.get("notes", "").strip(),
            inversion_id=data.get("inversion", ""),
        )
