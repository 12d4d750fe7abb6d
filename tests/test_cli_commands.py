"""The core commands are a plugin (harness.cli.commands), registered through the hook a third party
uses; a light command loads no other plugin; a plugin cannot take a core command's name."""

from __future__ import annotations

import subprocess
import sys

import pytest

from harness.cli.commands import CORE_COMMANDS, harness_register_commands
from harness.cli.dispatch import core_commands
from harness.registry import CommandRegistry, RegistrationError


def test_the_core_commands_come_from_their_plugin():
    registry = core_commands()
    assert registry.core_names() == list(CORE_COMMANDS)
    assert {"run", "list", "sweep", "cache", "data", "report"} <= set(registry.names())
    assert all(registry.is_core(name) for name in registry.names())


def _plugin(name: str, *commands: str):
    def register(registry: CommandRegistry) -> None:
        registry.current_plugin = name
        for command in commands:
            registry.add(command, print, "a plugin's")

    return register


@pytest.mark.parametrize("command", ["run", "run fast", "cache"])
@pytest.mark.parametrize("plugin_first", [False, True])
def test_a_plugin_taking_a_core_name_is_refused_naming_both(command, plugin_first):
    """Whichever registers first: entry points load by name, so a plugin may come before the core's."""
    registry = CommandRegistry()

    def core(registry: CommandRegistry) -> None:
        registry.current_plugin = "rlhf-harness:core_commands"
        harness_register_commands(registry)

    steps = [_plugin("theirs.py", command), core] if plugin_first else [core, _plugin("theirs.py", command)]
    steps[0](registry)
    with pytest.raises(RegistrationError) as err:
        steps[1](registry)
    message = str(err.value)
    assert f"'{command.split()[0]}' is a core command" in message
    assert "'theirs.py'" in message and "'rlhf-harness:core_commands'" in message


def test_plugin_commands_beside_the_core_ones():
    registry = CommandRegistry()
    registry.current_plugin = "core"
    harness_register_commands(registry)
    _plugin("theirs.py", "bench mine", "hello")(registry)
    assert not registry.is_core("bench mine") and not registry.is_core("hello") and registry.is_core("run")
    registry.drop_plugin("core")
    assert registry.core_names() == [] and registry.names() == ["bench mine", "hello"]


def test_a_light_command_loads_no_plugin(tmp_path):
    """``harness cache ls`` must not pay for torch, transformers and TRL (seconds): only the core
    commands' plugin is called."""
    code = ("import sys; from harness.cli import main; rc = main(['cache', 'ls', '--cache-dir', sys.argv[1]]); "
            "print(rc, 'harness.plugin_manager' in sys.modules, 'torch' in sys.modules)")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "cache")], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-1] == "0 False False"


def test_a_core_command_needing_plugins_loads_them_once(monkeypatch, capsys):
    import harness.cli.host as host_module
    from harness.cli import main

    loads = []
    real_load = host_module.load
    monkeypatch.setattr(host_module, "load", lambda argv: loads.append(argv) or real_load(argv))
    assert main(["list"]) == 0
    assert len(loads) == 1
    out = capsys.readouterr().out
    assert "harness bench ppo" in out and "harness run " not in out  # the core commands are not listed as a plugin's
