"""The action plugin contract: executors that reconcilers delegate external work to.

An action plugin runs the prepare → plan → apply (or destroy) → cleanup lifecycle for one
resource at a time, for example by dispatching a CI workflow. Reconcilers reach one
with `await ctx.get_action_plugin(name)`; the daemon creates one shared instance per
plugin and initialises it, on first use, with `load_config_from_env()`. Plugins are
found through the `no8s.actions` entry-point group (besides the built-in
`github_actions`). Names and fields follow the upstream documentation; no daemon
internals here.
"""

from __future__ import annotations

import abc
import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Optional


class ActionPhase(enum.StrEnum):
    """Where an action stands."""

    PENDING = "pending"
    INITIALIZING = "initializing"
    PLANNING = "planning"
    APPLYING = "applying"
    DESTROYING = "destroying"
    COMPLETED = "completed"
    FAILED = "failed"


@dataclass
class ActionContext:
    """What an action plugin is told about the resource it acts for."""

    resource_id: int
    resource_name: str
    generation: int
    spec: dict[str, Any]
    spec_hash: str
    plugin_config: dict[str, Any] = field(default_factory=dict)
    # The resource's current outputs (a no8sd addition): lets a plugin see what an earlier
    # run of the same generation produced, across daemon restarts.
    last_outputs: dict[str, Any] = field(default_factory=dict)


@dataclass
class ActionResult:
    """The outcome of plan, apply or destroy."""

    success: bool = False
    phase: ActionPhase = ActionPhase.PENDING
    plan_output: str = ""
    apply_output: str = ""
    error_message: Optional[str] = None  # noqa: UP045 - the documented signature
    resources_created: int = 0
    resources_updated: int = 0
    resources_deleted: int = 0
    outputs: dict[str, Any] = field(default_factory=dict)
    has_changes: bool = False


@dataclass
class DriftResult:
    """Whether the real world has moved away from what was applied."""

    has_drift: bool = False
    drift_details: str = ""
    resources_drifted: int = 0
    error_message: Optional[str] = None  # noqa: UP045 - the documented signature


@dataclass
class ResourceSpec:
    """A resource as an input plugin submits it (upstream shape)."""

    name: str
    action_plugin: str
    spec: dict[str, Any]
    plugin_config: Optional[dict[str, Any]] = None  # noqa: UP045
    metadata: Optional[dict[str, Any]] = None  # noqa: UP045


class ActionPlugin(abc.ABC):
    """An executor reconcilers delegate to; discovered via the `no8s.actions` entry points."""

    monotonic: Callable[[], float] = time.monotonic
    """Seconds on a clock that never goes back: what a plugin's timeouts and polling
    deadlines should read. The daemon sets it to its own clock before `initialize()`, so a
    test can move time forward by hand instead of waiting; a plugin without deadlines
    ignores it. (A no8sd addition: upstream plugins, which do not read it, run as before.)"""

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """Unique plugin name (what reconcilers pass to get_action_plugin)."""

    @property
    @abc.abstractmethod
    def version(self) -> str:
        """Plugin version, shown by GET /api/v1/plugins/actions."""

    @abc.abstractmethod
    async def initialize(self, config: dict[str, Any]) -> None:
        """Receive the plugin's configuration; called once, before first use."""

    async def validate_spec(self, spec: dict[str, Any]) -> tuple[bool, str | None]:
        """Check a spec before use: (True, None) or (False, reason)."""
        return True, None

    @abc.abstractmethod
    async def prepare(self, ctx: ActionContext) -> Any:
        """Set up whatever plan/apply need (the workspace)."""

    @abc.abstractmethod
    async def plan(self, ctx: ActionContext, workspace: Any) -> ActionResult:
        """Work out what apply would do; `has_changes` False means nothing to do."""

    @abc.abstractmethod
    async def apply(self, ctx: ActionContext, workspace: Any) -> ActionResult:
        """Make the change."""

    @abc.abstractmethod
    async def destroy(self, ctx: ActionContext, workspace: Any) -> ActionResult:
        """Undo or stop what apply did, for a resource being deleted."""

    async def get_outputs(self, ctx: ActionContext, workspace: Any) -> dict[str, Any]:
        """Outputs of the last apply for this workspace."""
        return {}

    async def get_state(self, ctx: ActionContext, workspace: Any) -> dict[str, Any] | None:
        """Whatever state the plugin keeps for the resource, if any."""
        return None

    async def detect_drift(self, ctx: ActionContext, workspace: Any) -> DriftResult:
        """Report drift; by default drift detection is not supported."""
        return DriftResult(has_drift=False, drift_details="Drift detection not supported")

    @abc.abstractmethod
    async def cleanup(self, workspace: Any) -> None:
        """Release the workspace; always called after plan/apply/destroy."""

    async def close(self) -> None:
        """Release long-lived resources (client sessions); called once at shutdown."""
        return None

    @classmethod
    def load_config_from_env(cls) -> dict[str, Any]:
        """The plugin's configuration, read from the environment; {} by default."""
        return {}
