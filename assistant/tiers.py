"""Build the backend for each tier from the settings, lazily, and say why a tier is unavailable."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from assistant import paths
from assistant.config import Settings
from models.base import Backend, ModelUnavailable
from models.catalog import LocalRole
from models.local import LocalBackend, LocalModel, LocalOptions
from models.manager import ModelManager

CLOUD_TIERS = ("groq", "gemini", "sonnet")


@dataclass
class TierSet:
    """The backends a session may use; each is created on first use and kept."""

    settings: Settings
    manager: ModelManager = field(default_factory=lambda: ModelManager(paths.models_dir()))
    _backends: dict[str, Backend] = field(default_factory=dict)
    _models: dict[Path, LocalModel] = field(default_factory=dict)

    def order(self) -> list[str]:
        """The cascade's tiers, cheapest first; offline keeps only the local tier."""
        tiers = list(self.settings.tiers)
        return [t for t in tiers if t == "local"] if self.settings.offline else tiers

    def local(self, role: LocalRole = "coder") -> LocalBackend:
        """The local backend for a role (coder or classifier); raises ModelUnavailable."""
        key = f"local:{role}"
        if key not in self._backends:
            choice = getattr(self.settings.local, role)
            name, path = self.manager.resolve(role, choice)
            model = self._models.get(path)
            if model is None:
                options = LocalOptions(self.settings.local.context_tokens, self.settings.local.gpu_layers,
                                       self.settings.local.threads)
                model = self._models[path] = LocalModel(path, options)
            self._backends[key] = LocalBackend(model, name)
        return self._backends[key]  # type: ignore[return-value]

    def get(self, tier: str) -> Backend:
        """The backend for a cascade tier; raises ModelUnavailable with the reason."""
        if tier == "local":
            return self.local("coder")
        if self.settings.offline:
            raise ModelUnavailable(f"{tier}: skipped offline", provider=tier)
        if tier not in self._backends:
            self._backends[tier] = _cloud_backend(tier, self.settings)
        return self._backends[tier]

    def loaded_models(self) -> list[LocalModel]:
        """Local models loaded so far."""
        return list(self._models.values())


def _cloud_backend(tier: str, settings: Settings) -> Backend:
    """The cloud backend for `tier`; ModelUnavailable when it has no key or no known price."""
    from models import cloud, pricing

    model = getattr(settings, f"{tier}_model") or pricing.default_model(tier)
    try:
        pricing.price(model)
    except pricing.UnknownModel as exc:
        raise ModelUnavailable(f"{tier}: {exc}", provider=tier) from None
    key = {"groq": settings.groq_api_key, "gemini": settings.gemini_api_key,
           "sonnet": settings.anthropic_api_key}[tier]
    return cloud.create(tier, model, key.get_secret_value() if key else None,
                        base_url=getattr(settings, f"{tier}_base_url"))
