"""``manage.py create_api_token USERNAME [--name NAME]``: a cluster API token, printed once."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from inversions.tokens import create_api_token


class Command(BaseCommand):
    help = "Make an API token for a user and print it (it is shown only this once)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="What the token is for, e.g. 'blanca job script'.")

    def handle(self, *args, username: str, name: str, **options):
        User = get_user_model()
        try:
            user = User.objects.get(**{User.USERNAME_FIELD: username})
        except User.DoesNotExist:
            raise CommandError(f"There is no user named {username!r}: create the user first.") from None
        if user.is_superuser:
            # Who runs this is not known here: a token with every power is made by a superuser
            # in admin, where who made it is.
            raise CommandError(
                f"{username} is a superuser: only a superuser may make a token for one, in admin "
                "(API tokens → Add). Tokens for scripts belong to an account with the roles they need."
            )
        token, secret = create_api_token(user=user, name=name)
        self.stderr.write(f"Token {token.prefix}… for {username}; it is shown only now, keep it safe:")
        self.stdout.write(secret)
