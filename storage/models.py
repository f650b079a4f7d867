"""The workspace schema: SQLAlchemy 2 typed ORM models.

One table per noun of the annotation-and-training loop. Texts are stored once and
referenced by id; content hashes make re-imports idempotent. The schema's version lives
in ``storage.migrations.SCHEMA_VERSION``; change a table here only together with a
migration step there.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import json
from typing import Any, Optional

from sqlalchemy import (
    Boolean,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def content_hash(*parts: str) -> str:
    """Stable 64-bit-ish key for a tuple of texts (NUL-separated so ("ab","c") != ("a","bc"))."""
    digest = hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()
    return digest[:32]


class Base(DeclarativeBase):
    pass


class Choice(str, enum.Enum):
    """What an annotator said about a pair (response a / response b in stored order)."""

    A = "a"
    B = "b"
    TIE = "tie"
    BOTH_BAD = "both_bad"
    SKIP = "skip"


class MemberRole(str, enum.Enum):
    """What a person may do in a workspace (storage.members holds the rules)."""

    OWNER = "owner"            # everything: settings, disputes, members, data, runs
    ANNOTATOR = "annotator"    # labels: their own verdicts and leases
    VIEWER = "viewer"          # reads only


class ResponseOrigin(str, enum.Enum):
    IMPORTED = "imported"
    GENERATED = "generated"
    EDITED = "edited"


class RunStatus(str, enum.Enum):
    PENDING = "pending"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"
    COMPLETED = "completed"
    FAILED = "failed"
    # Was running (or paused) in a process that is gone: killed, crashed, the computer shut down.
    INTERRUPTED = "interrupted"


def _enum(cls: type[enum.Enum]) -> Enum:
    # Store the value ("both_bad"), not the member name, and as a plain string column so
    # that adding a member never needs a table rebuild on SQLite.
    return Enum(cls, values_callable=lambda e: [m.value for m in e], native_enum=False,
                validate_strings=True, length=16)


class Setting(Base):
    """Workspace-wide key/value settings (overlap, guidelines, base model, ...), JSON values."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value_json: Mapped[str] = mapped_column(Text, nullable=False)

    @property
    def value(self) -> Any:
        return json.loads(self.value_json)


class Annotator(Base):
    """A person who labels (a member of the team), or a pseudo-annotator."""

    __tablename__ = "annotators"
    __table_args__ = (Index("ux_annotators_db_role", "db_role", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True, nullable=False)
    # A pseudo-annotator stands for an imported file's labels (provenance), not a person.
    is_pseudo: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    # The role given to this person (v5); NULL: none given, which counts as an owner while the
    # workspace names no owner and as an annotator once it does (storage.members).
    role: Mapped[Optional[MemberRole]] = mapped_column(_enum(MemberRole), nullable=True)
    # PostgreSQL: the database role this person connects as (the row-level security policies
    # find the member by ``current_user``); NULL on SQLite and for people without a login.
    db_role: Mapped[Optional[str]] = mapped_column(String(63), nullable=True)


class Prompt(Base):
    __tablename__ = "prompts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Plain-text prompt, or for chat prompts a readable rendering of the turns.
    text: Mapped[str] = mapped_column(Text, nullable=False)
    # Chat prompts keep their messages: JSON list of {"role", "content"}; NULL for plain text.
    messages_json: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    hash: Mapped[str] = mapped_column(String(32), unique=True, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, nullable=False)

    responses: Mapped[list["Response"]] = relationship(back_populates="prompt")

    @property
    def messages(self) -> Optional[list[dict]]:
        return json.loads(self.messages_json) if self.messages_json else None


class Response(Base):
    __tablename__ = "responses"
    __table_args__ = (UniqueConstraint("prompt_id", "hash", name="uq_response_prompt_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    prompt_id: Mapped[int] = mapped_column(ForeignKey("prompts.id", ondelete="CASCADE"), nullable=False)
    text: Mapped[str] = mapped_column(Text, nullable=False)
    # Conversational completions keep their messages (normally one assistant turn).
    messages_json: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    origin: Mapped[ResponseOrigin] = mapped_column(_enum(ResponseOrigin), default=ResponseOrigin.IMPORTED,
                                                   nullable=False)
    # For generated responses: which model (and adapter) wrote it.
    model_name: Mapped[Optional[str]] = mapped_column(String(500), nullable=True)
    # For generated responses (schema v6): the generation that wrote it (model, adapter run,
    # sampling settings live there); NULL for imported and edited texts.
    generation_id: Mapped[Optional[int]] = mapped_column(ForeignKey("generations.id", ondelete="SET NULL"),
                                                         nullable=True)
    # For edited responses: the response it was edited from.
    parent_id: Mapped[Optional[int]] = mapped_column(ForeignKey("responses.id", ondelete="SET NULL"),
                                                     nullable=True)
    hash: Mapped[str] = mapped_column(String(32), nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, nullable=False)

    prompt: Mapped[Prompt] = relationship(back_populates="responses")


class Pair(Base):
    """Two responses to one prompt, to be judged. ``response_a_id < response_b_id`` always,
    so the same two responses never make two pairs."""

    __tablename__ = "pairs"
    __table_args__ = (
        UniqueConstraint("response_a_id", "response_b_id", name="uq_pair_responses"),
        Index("ix_pairs_prompt", "prompt_id"),
        # The annotation queue's lookup: open pairs (judged_count < overlap) in id order.
        Index("ix_pairs_judged_count", "judged_count", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    prompt_id: Mapped[int] = mapped_column(ForeignKey("prompts.id", ondelete="CASCADE"), nullable=False)
    response_a_id: Mapped[int] = mapped_column(ForeignKey("responses.id", ondelete="CASCADE"), nullable=False)
    response_b_id: Mapped[int] = mapped_column(ForeignKey("responses.id", ondelete="CASCADE"), nullable=False)
    # Where the pair came from (file name, "generated", "demo").
    source: Mapped[str] = mapped_column(String(500), default="", nullable=False)
    # Shown with b on the left? Drawn once per pair at creation and kept, so position bias
    # does not leak into the data and every annotator sees the same layout.
    display_swapped: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    # "train" or "eval": deterministic from the pair's content hash (see storage.training_set).
    split: Mapped[str] = mapped_column(String(8), default="train", nullable=False)
    # Denormalised: how many distinct annotators' current verdicts judge this pair (skips do
    # not count). Kept in the same transaction as every verdict write (storage.verdicts), so
    # the queue finds open pairs through an index instead of counting verdicts per pair.
    judged_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0", nullable=False)
    # Schema v6: a pair of a blind A/B comparison (two models' answers to a held-out prompt).
    # Such pairs are judged in the Blind A/B screen only: the annotation queue and the
    # training set leave them out (storage.comparisons).
    comparison_id: Mapped[Optional[int]] = mapped_column(ForeignKey("comparisons.id", ondelete="CASCADE"),
                                                         nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, nullable=False)

    prompt: Mapped[Prompt] = relationship()
    response_a: Mapped[Response] = relationship(foreign_keys=[response_a_id])
    response_b: Mapped[Response] = relationship(foreign_keys=[response_b_id])


class Verdict(Base):
    """One annotator's judgement of one pair. Never updated in place: a changed mind is a new
    row; undo marks the row retracted. The annotator's current verdict on a pair is the
    newest row that is not retracted."""

    __tablename__ = "verdicts"
    __table_args__ = (
        Index("ix_verdicts_pair_annotator", "pair_id", "annotator_id"),
        Index("ix_verdicts_annotator_created", "annotator_id", "created_at"),
        # A unique index, not a constraint, so that the v4 migration can add it to an
        # existing table on SQLite (ALTER TABLE cannot add a UNIQUE column there).
        Index("ux_verdicts_client_id", "client_id", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pair_id: Mapped[int] = mapped_column(ForeignKey("pairs.id", ondelete="CASCADE"), nullable=False)
    annotator_id: Mapped[int] = mapped_column(ForeignKey("annotators.id", ondelete="CASCADE"), nullable=False)
    choice: Mapped[Choice] = mapped_column(_enum(Choice), nullable=False)
    seconds_spent: Mapped[float] = mapped_column(Float, default=0.0, nullable=False)
    note: Mapped[str] = mapped_column(Text, default="", nullable=False)
    # A final verdict given by an owner to settle a disagreement; it overrides the merge policy.
    is_resolution: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    retracted_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    # Made by the client that first sent the verdict (uuid4 hex): a resend of the same verdict
    # (a retry after a dropped connection, an outbox draining) finds this row instead of
    # adding a second one. NULL for rows written before v4 and by imports.
    client_id: Mapped[Optional[str]] = mapped_column(String(32), nullable=True)

    pair: Mapped[Pair] = relationship()
    annotator: Mapped[Annotator] = relationship()


class Reservation(Base):
    """A pair on an annotator's screen (or in their prefetch), reserved for them until
    ``expires_at`` (a lease; storage.reservations). A live lease counts towards the pair's
    overlap like a verdict, so with overlap k no more than k people hold or judged it at once;
    an expired row is ignored and replaced by the next claim."""

    __tablename__ = "reservations"
    __table_args__ = (UniqueConstraint("pair_id", "annotator_id", name="uq_reservation_pair_annotator"),
                      Index("ix_reservations_annotator", "annotator_id", "expires_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pair_id: Mapped[int] = mapped_column(ForeignKey("pairs.id", ondelete="CASCADE"), nullable=False)
    annotator_id: Mapped[int] = mapped_column(ForeignKey("annotators.id", ondelete="CASCADE"), nullable=False)
    # UTC, naive like every other timestamp of the schema; on PostgreSQL the server's clock.
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, nullable=False)


class TrainingRun(Base):
    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="", nullable=False)
    status: Mapped[RunStatus] = mapped_column(_enum(RunStatus), default=RunStatus.PENDING, nullable=False)
    # The resolved, validated config (JSON of core.training config dataclass).
    config_json: Mapped[str] = mapped_column(Text, nullable=False)
    base_model: Mapped[str] = mapped_column(String(1000), nullable=False)
    run_dir: Mapped[str] = mapped_column(String(1000), nullable=False)
    adapter_path: Mapped[Optional[str]] = mapped_column(String(1000), nullable=True)
    error: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    step: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    total_steps: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    started_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime, nullable=True)
    finished_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime, nullable=True)
    # The process that set the run running (storage.process_owner): host name, pid, and the
    # process's start time (seconds since the epoch; tells a reused pid from the original).
    owner_host: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    owner_pid: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    owner_started: Mapped[Optional[float]] = mapped_column(Float, nullable=True)
    # Schema v6, rounds: the run this one continued from (its adapter was the starting point,
    # or its generated pairs were the new data), and how it started: "adapter" (from the parent
    # run's adapter) or "base" (a fresh LoRA on the base model). NULL for a first round.
    parent_run_id: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    start_from: Mapped[Optional[str]] = mapped_column(String(16), nullable=True)


class RunVerdict(Base):
    """Schema v6: the verdicts a run trained on (its training set's current verdicts at launch)."""

    __tablename__ = "run_verdicts"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    verdict_id: Mapped[int] = mapped_column(ForeignKey("verdicts.id", ondelete="CASCADE"), primary_key=True)


class Generation(Base):
    """Schema v6: one batch of sampled responses — which model wrote them and how.

    ``run_id`` is the run whose adapter was loaded on the base (NULL: the base model alone);
    ``settings_json`` holds the sampling settings (temperature, top_p, max_new_tokens, seed, n)."""

    __tablename__ = "generations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    base_model: Mapped[str] = mapped_column(String(1000), nullable=False)
    run_id: Mapped[Optional[str]] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"), nullable=True)
    label: Mapped[str] = mapped_column(String(200), default="", nullable=False)  # "base", a run's name
    settings_json: Mapped[str] = mapped_column(Text, default="{}", nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, nullable=False)


class Comparison(Base):
    """Schema v6: a blind A/B comparison of two models (NULL run = the base model) on held-out
    prompts. Its pairs carry ``comparison_id``; which model wrote which side is each
    response's generation, and the side shown left is the pair's ``display_swapped``."""

    __tablename__ = "comparisons"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="", nullable=False)
    run_a: Mapped[Optional[str]] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"), nullable=True)
    run_b: Mapped[Optional[str]] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"), nullable=True)
    settings_json: Mapped[str] = mapped_column(Text, default="{}", nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, nullable=False)


class PairScore(Base):
    """Schema v6: a run's adapter's implicit-reward margin on a pair (r(a) - r(b), in nats times
    beta), for ordering the queue by uncertainty and showing the adapter's preference."""

    __tablename__ = "pair_scores"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    pair_id: Mapped[int] = mapped_column(ForeignKey("pairs.id", ondelete="CASCADE"), primary_key=True)
    margin: Mapped[float] = mapped_column(Float, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, nullable=False)


class Metric(Base):
    __tablename__ = "metrics"
    __table_args__ = (Index("ix_metrics_run_name_step", "run_id", "name", "step"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), nullable=False)
    step: Mapped[int] = mapped_column(Integer, nullable=False)
    split: Mapped[str] = mapped_column(String(8), nullable=False)  # "train" | "eval"
    name: Mapped[str] = mapped_column(String(64), nullable=False)
    value: Mapped[float] = mapped_column(Float, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, nullable=False)


class ReferenceLogp(Base):
    """Cached reference-model log-probs of one (prompt, chosen, rejected) example.

    ``model_key`` fingerprints the base model weights/config, ``tokenization_key`` the
    tokenizer and the truncation settings, ``example_hash`` the texts themselves, so a
    different model, tokenisation or an edited text never reuses a stale value.
    """

    __tablename__ = "reference_logps"
    __table_args__ = (
        UniqueConstraint("model_key", "tokenization_key", "example_hash", name="uq_reference_logp_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_key: Mapped[str] = mapped_column(String(64), nullable=False)
    tokenization_key: Mapped[str] = mapped_column(String(64), nullable=False)
    example_hash: Mapped[str] = mapped_column(String(32), nullable=False)
    chosen_logp: Mapped[float] = mapped_column(Float, nullable=False)
    rejected_logp: Mapped[float] = mapped_column(Float, nullable=False)
    chosen_tokens: Mapped[int] = mapped_column(Integer, nullable=False)
    rejected_tokens: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, nullable=False)


class TokenizedExample(Base):
    """One example's token ids, cached per (tokenisation, example) like ``ReferenceLogp``.

    ``tokenization_key`` fingerprints the tokenizer, ``max_length`` and the truncation mode,
    ``example_hash`` the texts; the ids are those after truncation, little-endian int32 (see
    ``storage.token_cache``). ``dropped`` names why tokenisation left the example out (ids empty).
    """

    __tablename__ = "tokenized_examples"
    __table_args__ = (
        UniqueConstraint("tokenization_key", "example_hash", name="uq_tokenized_example_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tokenization_key: Mapped[str] = mapped_column(String(64), nullable=False)
    example_hash: Mapped[str] = mapped_column(String(32), nullable=False)
    chosen_ids: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    chosen_start: Mapped[int] = mapped_column(Integer, nullable=False)
    rejected_ids: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    rejected_start: Mapped[int] = mapped_column(Integer, nullable=False)
    dropped: Mapped[Optional[str]] = mapped_column(String(100), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
