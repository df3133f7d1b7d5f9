"""factory-boy factories for the domain, and a helper that walks an OP through its states."""

from __future__ import annotations

import datetime as dt

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from inversions.models import ApiToken
from inversions.tokens import assign_secret
from ops.history import Actor, record_event
from ops.models import (
    Dataset,
    Experiment,
    InstrumentProgram,
    ObservingProgram,
    ProgramEvent,
    Proposal,
    Scan,
)
from ops.states import ActorKind, State


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@nso.example")
    password = factory.django.Password("correct horse battery staple")

    @factory.post_generation
    def groups(self, create, names, **kwargs):
        for name in names or []:
            # get_or_create: a transactional test before this one flushed the migration's rows.
            self.groups.add(Group.objects.get_or_create(name=name)[0])


class ProposalFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Proposal
        django_get_or_create = ["id"]

    id = factory.Sequence(lambda n: f"pid_2_{n + 1}")


class ExperimentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Experiment
        django_get_or_create = ["id"]

    id = factory.Sequence(lambda n: f"eid_2_{n + 1}")
    description = "Sunspot penumbra in Fe I 630 nm"


class ObservingProgramFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ObservingProgram

    id = factory.Sequence(lambda n: f"eid_2_{n + 1}_opTest_R001.{80000 + n}.13964206")
    proposal = factory.SubFactory(ProposalFactory)
    experiment = factory.SubFactory(ExperimentFactory)
    newest_dataset_created_at = factory.LazyFunction(lambda: dt.datetime(2025, 4, 2, 22, 24, tzinfo=dt.UTC))


class InstrumentProgramFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = InstrumentProgram

    id = factory.Sequence(lambda n: f"id.{1189737 + n}.1073625")
    program = factory.SubFactory(ObservingProgramFactory)
    instrument = "VISP"


class DatasetFactory(factory.django.DjangoModelFactory):
    """A ViSP dataset that passes every qualification rule unless told otherwise."""

    class Meta:
        model = Dataset

    id = factory.Sequence(lambda n: f"DS{n:05d}")
    instrument_program = factory.SubFactory(InstrumentProgramFactory)
    program = factory.SelfAttribute("instrument_program.program")
    proposal = factory.SelfAttribute("program.proposal")
    experiment_id_text = factory.SelfAttribute("program.experiment_id")
    instrument_name = factory.SelfAttribute("instrument_program.instrument")
    create_date = dt.datetime(2025, 4, 2, 22, 24, tzinfo=dt.UTC)
    update_date = dt.datetime(2025, 6, 28, 19, 52, tzinfo=dt.UTC)
    start_time = dt.datetime(2025, 3, 27, 22, 3, tzinfo=dt.UTC)
    end_time = dt.datetime(2025, 3, 27, 22, 12, tzinfo=dt.UTC)
    bounding_box = "(-448.35,346.49),(-501.23,268.64)"
    stokes_parameters = "IQUV"
    wavelength_min = 629.9
    wavelength_max = 630.6
    spectral_lines = factory.LazyFunction(lambda: ["Fe I (630.25 nm)"])
    frame_count = 444
    health_good = 444
    gos_open = 444
    ao_locked = 400
    bucket = "data"
    raw = factory.LazyAttribute(lambda dataset: {"datasetId": dataset.id})


class ScanFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Scan


# The shortest path of (state, actor) steps from nothing to each state.
_PATH = [
    (State.DISCOVERED, ActorKind.SCANNER),
    (State.INVERTIBLE, ActorKind.QUALIFIER),
    (State.QUEUED, ActorKind.INVERTER),
    (State.PREPROCESSING, ActorKind.WORKER),
    (State.PREPROCESSED, ActorKind.WORKER),
    (State.WORKING, ActorKind.INVERTER),
    (State.INVERTED, ActorKind.INVERTER),
    (State.GENERATING, ActorKind.WORKER),
    (State.GENERATED, ActorKind.WORKER),
    (State.PUBLISHING, ActorKind.PUBLISHER),
    (State.PUBLISHED, ActorKind.WORKER),
]
_DETOURS = {
    State.NOT_INVERTIBLE: (State.DISCOVERED, ActorKind.QUALIFIER),
    State.ERROR: (State.PREPROCESSING, ActorKind.WORKER),
    State.ARCHIVED: (State.DISCOVERED, ActorKind.STAFF),
}


def walk_to(program_id: str, state: State) -> ProgramEvent:
    """Append the events that take an OP from its state (none, or one on the shortest path) to
    ``state`` along the transition table, each by its actor as the app would; the last one."""
    current = ObservingProgram.objects.values_list("state", flat=True).get(pk=program_id)
    start = [step for step, _ in _PATH].index(current) + 1 if current else 0
    last, actor_kind = _DETOURS.get(state, (state, None))
    for step, kind in _PATH[start:]:
        event = record_event(program_id=program_id, to_state=step, actor=Actor(kind))
        if step == last:
            break
    if actor_kind is not None:
        event = record_event(program_id=program_id, to_state=state, actor=Actor(actor_kind))
    return event


def program_in_state(state: State, **program_fields) -> ObservingProgram:
    """An OP whose history walks the transition table to ``state``, as the app would."""
    program = ObservingProgramFactory(**program_fields)
    walk_to(program.pk, state)
    program.refresh_from_db()
    return program


def events_of(program: ObservingProgram) -> list[ProgramEvent]:
    return list(ProgramEvent.objects.filter(program=program).order_by("id"))


class ApiTokenFactory(factory.django.DjangoModelFactory):
    """A user's API token; its secret, which the app shows once, is kept as ``token.secret``."""

    class Meta:
        model = ApiToken

    user = factory.SubFactory(UserFactory)
    name = "cluster job script"

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        token = model_class(*args, **kwargs)
        token.secret = assign_secret(token)
        token.save()
        return token


class InversionFactory(factory.django.DjangoModelFactory):
    """An attempt at inverting an OP; put the OP in its state with ``program_in_state``."""

    class Meta:
        model = "inversions.Inversion"

    program = factory.SubFactory(ObservingProgramFactory)
    owner = factory.SubFactory(UserFactory)
    queue_position = factory.Sequence(lambda n: n)

    class Params:
        # Reported done with ``software_commit`` and published: an OP's earlier inversion.
        published = factory.Trait(
            reported_at=factory.LazyFunction(timezone.now),
            software_commit=factory.Sequence(lambda n: f"{n:07x}"),
            ended_at=factory.SelfAttribute("reported_at"),
            end_reason="published",
        )


def published_program(*, commit: str, **program_fields) -> ObservingProgram:
    """A published OP whose one inversion was reported done with the software commit ``commit``."""
    program = program_in_state(State.PUBLISHED, **program_fields)
    InversionFactory(program=program, published=True, software_commit=commit)
    return program


class TransferFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "inversions.Transfer"

    inversion = factory.SubFactory(InversionFactory)
    step = "preprocess"
    submission_id = factory.Faker("uuid4")
    backend = "local"
    label = factory.LazyAttribute(lambda transfer: f"Level 2 {transfer.inversion.id}")
    source_collection = "level1"
    destination_collection = "scratch"
    items = factory.LazyFunction(list)
    status = "active"
