"""``manage.py programs --json [--state STATE]``: the operators' export, one JSON object per OP.

The format (JSON Lines) is documented in docs/programs-export.md.
"""

import json
import os
import sys

from django.core.management.base import BaseCommand

from ops import selectors
from ops.states import State

VERDICTS = {True: "invertible", False: "not invertible", None: "not qualified"}


class Command(BaseCommand):
    help = (
        "List every observing program with its state and verdict. With --json: JSON Lines, one "
        "object per program, as documented in docs/programs-export.md."
    )

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="one JSON object per line (JSON Lines)")
        parser.add_argument("--state", choices=State.values, help="only programs in this state")

    def handle(self, *args, **options):
        # Streamed: the selector reads the OPs in chunks, each line is written as it comes.
        try:
            for row in selectors.program_export(state=options["state"]):
                self.stdout.write(_line(row, as_json=options["json"]))
        except BrokenPipeError:
            # The reader stopped early (`programs --json | head`): not an error. Point stdout
            # at /dev/null so that the interpreter's final flush does not fail either.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _line(row: dict, *, as_json: bool) -> str:
    if as_json:
        return json.dumps(row, ensure_ascii=False, separators=(",", ":"))
    return f"{row['program_id']}  {row['state'] or '-'}  {VERDICTS[row['invertible']]}"
