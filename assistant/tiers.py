"""The session's tiers: their specs from the settings (models/tier_registry.py), each backend built on
first use and kept, and why a tier is unavailable."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Literal

from assistant import paths
from assistant.config import Settings
from models import pricing
from models.base import Backend, ModelUnavailable, health_of
from models.catalog import LocalRole
from models.local import LocalBackend, LocalModel, LocalOptions
from models.manager import ModelManager
from models.tier_registry import BuildContext, TierSpec, build_backend

CheckStatus = Literal["ok", "failed", "not set up", "skipped"]


@dataclass(frozen=True)
class TierCheck:
    """What checking one tier found (`tiercode doctor`)."""

    tier: str
    provider: str
    endpoint: str
    status: CheckStatus
    """`ok`; `failed`: a tier the user configured cannot answer; `not set up`: a built-in tier the user never
    named lacks its key or model; `skipped`: offline, and not on this machine."""
    detail: str
    warning: str = ""


@dataclass
class TierSet:
    """The backends a session may use; each is created on first use and kept."""

    settings: Settings
    manager: ModelManager = field(default_factory=lambda: ModelManager(paths.models_dir()))
    _backends: dict[str, Backend] = field(default_factory=dict)
    _models: dict[Path, LocalModel] = field(default_factory=dict)

    @cached_property
    def specs(self) -> dict[str, TierSpec]:
        """Every declared tier, by name."""
        return self.settings.tier_specs()

    def spec(self, tier: str) -> TierSpec:
        """A declared tier's spec; ModelUnavailable for a name no tier has."""
        try:
            return self.specs[tier]
        except KeyError:
            raise ModelUnavailable(f"{tier}: no such tier (declared: {', '.join(self.specs)})", provider=tier) from None

    def order(self) -> list[str]:
        """The cascade's tiers, cheapest first; offline keeps only the tiers on this machine."""
        tiers = list(self.settings.tiers)
        return [t for t in tiers if self.spec(t).on_this_machine] if self.settings.offline else tiers

    def endpoint(self, tier: str) -> str:
        """Where a tier's calls go (the classifier's, for `classifier`); empty when in-process or unknown."""
        spec = self.settings.classifier_spec() if tier == "classifier" else self.specs.get(tier)
        return spec.endpoint if spec is not None else ""

    def local(self, role: LocalRole = "coder") -> Backend:
        """The local model for a role: the coder is the `local` tier; the classifier is loaded in-process, or
        served with `local.server`. Raises ModelUnavailable."""
        if role == "coder":
            return self.get("local")
        key = f"local:{role}"
        if key not in self._backends:
            served = self.settings.classifier_spec()
            if served is not None:
                self._backends[key] = build_backend(served, self._build_context)
            else:
                name, path = self.manager.resolve(role, getattr(self.settings.local, role))
                model = self._models.get(path)
                if model is None:
                    model = self._models[path] = LocalModel(path, self._local_options)
                self._backends[key] = LocalBackend(model, name)
        return self._backends[key]

    def get(self, tier: str) -> Backend:
        """The backend for a cascade tier; raises ModelUnavailable with the reason."""
        spec = self.spec(tier)
        if self.settings.offline and not spec.on_this_machine:
            raise ModelUnavailable(f"{tier}: skipped offline ({spec.base_url or spec.provider + ' API'} is not on "
                                   "this machine; offline allows loopback only)", provider=tier)
        if tier not in self._backends:
            if not spec.free and spec.rates is None:
                try:
                    pricing.price(spec.model)
                except pricing.UnknownModel as exc:
                    raise ModelUnavailable(f"{tier}: {exc}", provider=tier) from None
            self._backends[tier] = build_backend(spec, self._build_context)
        return self._backends[tier]

    def configured(self, tier: str) -> bool:
        """Whether the user set this tier up: declared it, named it in `tiers`, or served the local one."""
        named = "tiers" in self.settings.model_fields_set and tier in self.settings.tiers
        return named or tier in self.settings.tier or (tier == "local" and self.settings.local.server is not None)

    def check(self, tier: str, timeout: float) -> TierCheck:
        """Build the tier and let its backend check itself (reachable, its model served, its key set)."""
        spec = self.spec(tier)
        if self.settings.offline and not spec.on_this_machine:
            return TierCheck(tier, spec.provider, spec.endpoint, "skipped", "offline: not on this machine")
        try:
            health = health_of(self.get(tier), timeout)
        except ModelUnavailable as exc:
            status: CheckStatus = "failed" if self.configured(tier) else "not set up"
            return TierCheck(tier, spec.provider, spec.endpoint, status, str(exc))
        return TierCheck(tier, spec.provider, spec.endpoint, "ok" if health.ok else "failed", health.detail,
                         health.warning)

    def loaded_models(self) -> list[LocalModel]:
        """Local models loaded so far."""
        return list(self._models.values())

    @property
    def _local_options(self) -> LocalOptions:
        local = self.settings.local
        return LocalOptions(local.context_tokens, local.gpu_layers, local.threads)

    @cached_property
    def _build_context(self) -> BuildContext:
        return BuildContext(api_keys=self.settings.api_keys(), manager=self.manager,
                            local_options=self._local_options, local_models=self._models)
