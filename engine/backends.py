"""The backends, one typed registry: what builds each stage and whether it can run here.

"backend" means draft or full (the music engine), nothing else. Builders import lazily so
that reading the table costs nothing: the draft backend never imports torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from bridge.errors import InvalidRequest, WeightsError
from engine.config import Settings
from engine.types import Describer, Generator, Retriever

Check = Callable[[Settings], tuple[bool, str]]
StageName = Literal["describe", "retrieve", "generate"]
STAGES: tuple[StageName, ...] = ("describe", "retrieve", "generate")


@dataclass(frozen=True)
class Backend:
    """A music backend: its three stages and the checks that say whether it runs here."""

    name: str
    describer: Callable[[Settings], Describer]
    retriever: Callable[[Settings], Retriever]
    generator: Callable[[Settings], Generator]
    checks: tuple[tuple[StageName, Check], ...] = ()

    def build(self, stage: StageName, settings: Settings) -> Describer | Retriever | Generator:
        return {"describe": self.describer, "retrieve": self.retriever, "generate": self.generator}[
            stage
        ](settings)

    def problems(self, settings: Settings, stages: tuple[StageName, ...] = STAGES) -> list[str]:
        """Why this backend cannot run these stages here, in words (empty: it can)."""
        return [why for ok, why in self.report(settings, stages).values() if not ok]

    def report(
        self, settings: Settings, stages: tuple[StageName, ...] = STAGES
    ) -> dict[StageName, tuple[bool, str]]:
        """(ok, what will run or why not) per checked stage."""
        found: dict[StageName, tuple[bool, str]] = {}
        for stage, check in self.checks:
            if stage not in stages:
                continue
            try:
                found[stage] = check(settings)
            except ImportError as exc:
                found[stage] = (False, f"{check.__module__} is not available ({exc})")
        return found


def _draft_describer(settings: Settings) -> Describer:
    from engine.describe.draft import DraftDescriber

    return DraftDescriber(settings)


def _draft_retriever(settings: Settings) -> Retriever:
    from engine.retrieve.draft.retriever import DraftRetriever

    return DraftRetriever(settings)


def _draft_generator(settings: Settings) -> Generator:
    from engine.generate.draft.generator import DraftGenerator

    return DraftGenerator(settings.draft, max_duration_s=settings.pipeline.max_cue_s)


def _full_describer(settings: Settings) -> Describer:
    from engine.describe.full.describer import FullDescriber

    return FullDescriber(settings)


def _full_retriever(settings: Settings) -> Retriever:
    from engine.retrieve.full.retriever import FullRetriever

    return FullRetriever(settings)


def _full_generator(settings: Settings) -> Generator:
    from engine.generate.full.generator import FullGenerator

    return FullGenerator(settings)


def _full_describe_check(settings: Settings) -> tuple[bool, str]:
    from engine.describe.full.describer import full_describe_available

    return full_describe_available(settings)


def _full_retrieve_check(settings: Settings) -> tuple[bool, str]:
    from engine.retrieve.full.retriever import full_retrieval_available

    return full_retrieval_available(settings)


def _full_generate_check(settings: Settings) -> tuple[bool, str]:
    from engine.generate.full.availability import full_available

    return full_available(settings)


BACKENDS: dict[str, Backend] = {
    "draft": Backend("draft", _draft_describer, _draft_retriever, _draft_generator),
    "full": Backend(
        "full",
        _full_describer,
        _full_retriever,
        _full_generator,
        checks=(
            ("describe", _full_describe_check),
            ("retrieve", _full_retrieve_check),
            ("generate", _full_generate_check),
        ),
    ),
}
CHOICES: tuple[str, ...] = ("auto", *BACKENDS)


def get(name: str) -> Backend:
    try:
        return BACKENDS[name]
    except KeyError:
        raise InvalidRequest(f"unknown backend {name!r}; backends: {', '.join(BACKENDS)}") from None


def select(
    requested: str, settings: Settings, stages: tuple[StageName, ...] = STAGES
) -> tuple[str, str]:
    """(backend, why). Full only where every needed stage can run (a music library is not
    needed); auto falls back to draft. The reason says what each full stage will run."""
    if requested == "draft":
        return "draft", "asked for the draft backend"
    report = BACKENDS["full"].report(settings, stages)
    problems = [why for ok, why in report.values() if not ok]
    if not problems:
        return "full", "full backend: " + "; ".join(f"{k}: {why}" for k, (_, why) in report.items())
    if requested == "full":
        raise WeightsError("the full backend cannot run: " + "; ".join(problems))
    more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
    return "draft", f"draft backend; full unavailable: {problems[0]}{more}"


def build_checked(name: str, stage: StageName, settings: Settings) -> object:
    """One stage of a named backend, refusing with the reason when it cannot run here."""
    backend = get(name)
    problems = backend.problems(settings, (stage,))
    if problems:
        raise WeightsError(f"the {name} backend cannot run here: " + "; ".join(problems))
    return backend.build(stage, settings)
