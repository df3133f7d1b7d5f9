"""The programs table's filters and order, read from the URL (GET parameters)."""

from __future__ import annotations

from collections.abc import Iterable

from django import forms

from ops.selectors import DEFAULT_PROGRAM_SORT, PROGRAM_SORTS
from ops.states import State


class ProgramFilterForm(forms.Form):
    """A parameter that is not valid (an unknown state, a sort that does not exist) is left
    out, as if it were not there: old links and hand-typed URLs still show a page."""

    state = forms.ChoiceField(choices=[("", "all"), *State.choices], required=False)
    instrument = forms.ChoiceField(required=False)
    proposal = forms.CharField(
        max_length=64, required=False, widget=forms.TextInput(attrs={"placeholder": "pid_2_10", "size": 10})
    )
    q = forms.CharField(
        label="Search",
        max_length=128,
        required=False,
        widget=forms.TextInput(
            attrs={"type": "search", "placeholder": "program, proposal or experiment id", "size": 28}
        ),
    )
    stale = forms.ChoiceField(
        label="Stale",
        choices=[("", "any"), ("yes", "stale"), ("no", "not stale")],
        required=False,
        help_text="Level 1 data changed since the latest inversion.",
    )
    sort = forms.ChoiceField(
        choices=[(key, label) for key, (label, _) in PROGRAM_SORTS.items()], required=False
    )

    def __init__(self, data, *, instruments: Iterable[str]):
        super().__init__(data)
        self.fields["instrument"].choices = [("", "all"), *((name, name) for name in instruments)]

    def filters(self) -> dict[str, str]:
        """Every parameter's valid value; "" (no filter) or the default order for the others."""
        self.is_valid()
        values = {name: self.cleaned_data.get(name) or "" for name in self.fields}
        values["sort"] = values["sort"] or DEFAULT_PROGRAM_SORT
        return values

    def stale_filter(self) -> bool | None:
        """The stale filter as the selectors take it: True, False, or None (either)."""
        return {"yes": True, "no": False}.get(self.filters()["stale"])
