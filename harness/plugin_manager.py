"""The plugin manager: built-in and third-party plugins through the ``harness`` entry-point
group, plus plugin files or modules named by ``--plugin`` or ``$HARNESS_PLUGINS``. (The
built-in plugins themselves live in ``plugins/``, installed as ``harness_plugins``.)"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import pluggy

from harness import PROJECT, hookspecs
from harness.api import Benchmark, Evaluator, PolicyOptimizer, RewardModel
from harness.errors import UsageError
from harness.registry import CommandRegistry, RegistrationError, Registry

ENTRY_POINT_GROUP = "harness"
#: the distribution whose entry points are the built-ins (their code version is the harness's)
OWN_DISTRIBUTION = "rlhf-harness"
PLUGINS_ENV = "HARNESS_PLUGINS"
HOOK_PREFIX = "harness_"


class _PluginManager(pluggy.PluginManager):
    """Treats every ``harness_*`` function as a hook implementation, marked or not, so that a
    misspelt hook name is caught at start-up instead of being silently ignored (as pytest
    does for ``pytest_*``)."""

    def parse_hookimpl_opts(self, plugin, name):
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is None and name.startswith(HOOK_PREFIX) and callable(getattr(plugin, name, None)):
            return {}
        return opts


@dataclass
class PluginError:
    plugin: str
    error: str

    def __str__(self) -> str:
        return f"plugin {self.plugin!r} was not loaded: {self.error}"


@dataclass
class PluginHost:
    """The loaded plugins, the four registries and the commands they filled, and each plugin's
    code version (a distribution's version, or a digest of a plugin file)."""

    pm: pluggy.PluginManager
    algorithms: Registry
    reward_models: Registry
    evaluators: Registry
    benchmarks: Registry
    commands: CommandRegistry
    errors: list[PluginError] = field(default_factory=list)
    plugin_versions: dict[str, str] = field(default_factory=dict)
    own_distribution: str = OWN_DISTRIBUTION

    @property
    def hook(self):
        return self.pm.hook

    def report_errors(self, stream=None) -> None:
        for err in self.errors:
            print(f"harness: warning: {err}", file=stream or sys.stderr)


def _load_file(path: Path) -> ModuleType:
    module_name = f"harness_userplugin_{path.stem}_{abs(hash(str(path.resolve()))) % 10**8}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    return module


def _load_plugin_spec(spec: str) -> tuple[str, ModuleType]:
    """``spec`` is a ``.py`` file or an importable module name."""
    path = Path(spec)
    if spec.endswith(".py") or path.is_file():
        if not path.is_file():
            raise UsageError(f"--plugin {spec}: no such file")
        return str(path), _load_file(path)
    return spec, importlib.import_module(spec)


def _code_version(module: ModuleType) -> str:
    """A plugin module's version: a digest of its source file (or "unknown")."""
    path = getattr(module, "__file__", None)
    if not path or not Path(path).is_file():
        return "unknown"
    return "sha256:" + hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"it called sys.exit({exc.code!r}) while loading"
    return f"{type(exc).__name__}: {exc}"


def load_plugins(extra: list[str] | None = None, core_commands=()) -> PluginHost:
    """Load every plugin and fill the registries.

    A plugin that fails to import, or that implements a hook that does not exist (a typo), is
    reported in ``host.errors`` and skipped; the others still load. A name registered twice is
    a :class:`RegistrationError` naming both plugins, and so is a plugin command that takes one of
    ``core_commands``.
    """
    pm = _PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    errors: list[PluginError] = []
    versions: dict[str, str] = {}

    def register(name: str, load, version=None) -> None:
        try:
            module = load()
            pm.register(module, name=name)
            versions[name] = version or _code_version(module)
        except UsageError:
            raise
        except (Exception, SystemExit) as exc:  # a broken plugin (even one calling sys.exit) must not take the others down
            errors.append(PluginError(name, _error_text(exc)))

    for ep in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        dist = getattr(ep, "dist", None)
        name = f"{dist.name}:{ep.name}" if dist is not None else ep.name
        register(name, ep.load, f"{dist.name} {dist.version}" if dist is not None else None)
    specs = list(extra or [])
    specs += [s for s in os.environ.get(PLUGINS_ENV, "").split(os.pathsep) if s.strip()]
    for spec in dict.fromkeys(specs):
        register(spec, lambda spec=spec: _load_plugin_spec(spec)[1])

    # A hook implementation with no spec is a misspelt hook: report and drop its plugin.
    for hook_name, caller in list(vars(pm.hook).items()):
        if not isinstance(caller, pluggy.HookCaller) or caller.has_spec():
            continue
        for impl in caller.get_hookimpls():
            if impl.optionalhook or pm.get_plugin(impl.plugin_name) is None:
                continue
            errors.append(
                PluginError(impl.plugin_name, f"implements unknown hook {hook_name!r} (a typo? see harness/hookspecs.py)")
            )
            pm.unregister(name=impl.plugin_name)
    pm.check_pending()

    host = PluginHost(
        pm=pm,
        algorithms=Registry("algorithm", PolicyOptimizer),
        reward_models=Registry("reward model", RewardModel),
        evaluators=Registry("evaluator", Evaluator),
        benchmarks=Registry("benchmark", Benchmark),
        commands=CommandRegistry(reserved=core_commands),
        errors=errors,
        plugin_versions=versions,
    )
    for hook_name, registry in [
        ("harness_register_algorithms", host.algorithms),
        ("harness_register_reward_models", host.reward_models),
        ("harness_register_evaluators", host.evaluators),
        ("harness_register_benchmarks", host.benchmarks),
        ("harness_register_commands", host.commands),
    ]:
        # Call each plugin's implementation on its own, in load order, so the registry knows who added what.
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            if pm.get_plugin(impl.plugin_name) is None:  # dropped by an earlier hook's failure
                continue
            registry.current_plugin = impl.plugin_name
            try:
                impl.function(**{arg: registry for arg in impl.argnames})
            except (UsageError, RegistrationError):
                raise
            except Exception as exc:  # a plugin's bug: reported like a failed import, the others still load
                errors.append(PluginError(impl.plugin_name, f"its {hook_name} raised {_error_text(exc)}"))
                for other in (host.algorithms, host.reward_models, host.evaluators, host.benchmarks, host.commands):
                    other.drop_plugin(impl.plugin_name)
                pm.unregister(name=impl.plugin_name)
    return host


__all__ = ["load_plugins", "PluginHost", "PluginError", "RegistrationError", "ENTRY_POINT_GROUP", "PLUGINS_ENV"]
