from django.core.management.base import BaseCommand

from inversions.overdue import describe, overdue_programs


class Command(BaseCommand):
    help = "Print the programs that stay in a state longer than expected (LEVEL2_EXPECTED_DAYS_<STATE>)."

    def handle(self, *args, **options):
        overdue = overdue_programs()
        for item in overdue:
            self.stdout.write(describe(item))
        self.stdout.write(f"{len(overdue)} overdue" if overdue else "Nothing is overdue.")
