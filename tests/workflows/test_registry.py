"""The registry: loading "pkg.mod:attr" specs, clear errors for bad ones, and finding
workflows and branches by name."""

from __future__ import annotations

import subprocess
import sys

import pytest

from supervisor.workflows import (
    UnknownWorkflow,
    WorkflowRegistrationError,
    registry,
    workflow,
)

FLOWS = """
from supervisor.workflows import workflow

def h(input, ctx):
    return input

one = workflow("one").task("t", handler=h).build()
two = workflow("two").parallel(
    "p", branches=[workflow.branch("b").task("t", handler=h).build()]
).build()
both = [one, two]
number = 42
"""


def test_load_registers_a_workflow_and_a_list(modules):
    """A spec may name one workflow or a list of them; load registers and returns them."""
    name = modules.write(FLOWS)
    found = registry.load([f"{name}:one", f"{name}:both"], python_path=[modules.folder])
    assert sorted(found) == ["one", "two"]
    assert registry.names() == ["one", "two"]
    assert registry.find("one") is found["one"]
    assert found["one"].module == name


def test_find_resolves_a_branch_by_its_qualified_name(modules):
    """A branch is found as parent/parallel-step/branch."""
    name = modules.write(FLOWS)
    registry.load([f"{name}:two"], python_path=[modules.folder])
    assert registry.find("two/p/b").qualname == "two/p/b"
    with pytest.raises(UnknownWorkflow, match="no branch 'two/p/zz'"):
        registry.find("two/p/zz")


def test_find_imports_the_module_it_is_given(modules):
    """An unknown workflow is looked for in the given module, whose workflows are registered."""
    name = modules.write(FLOWS)
    registry.add_path([modules.folder])
    assert registry.find("two", module=name).name == "two"
    assert registry.names() == ["one", "two"]


def test_find_an_unknown_workflow_names_it(modules):
    """An unknown name raises UnknownWorkflow naming it (and the module searched)."""
    name = modules.write(FLOWS)
    registry.add_path([modules.folder])
    with pytest.raises(UnknownWorkflow, match=r"no workflow named 'nope' is registered$"):
        registry.find("nope")
    with pytest.raises(UnknownWorkflow, match=f"module '{name}' defines none"):
        registry.find("nope", module=name)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_colon", "workflow spec 'no_colon': expected 'package.module:attribute'"),
        ("mod:", "expected 'package.module:attribute'"),
        (
            "wf_no_such_module_here:flow",
            "workflow spec 'wf_no_such_module_here:flow': cannot import 'wf_no_such_module_here': "
            "module 'wf_no_such_module_here' not found",
        ),
        (
            "{mod}:missing",
            "workflow spec '{mod}:missing': module '{mod}' has no attribute 'missing'",
        ),
        (
            "{mod}:number",
            "workflow spec '{mod}:number': 'number' is of type int, not a built workflow",
        ),
        ("{mod}:h", "'h' is of type function, not a built workflow"),
    ],
)
def test_bad_specs_are_reported_naming_the_spec(modules, spec, message):
    """Malformed specs, missing modules or attributes and non-workflows name the spec."""
    name = modules.write(FLOWS)
    with pytest.raises(WorkflowRegistrationError) as caught:
        registry.load([spec.format(mod=name)], python_path=[modules.folder])
    assert message.format(mod=name) in str(caught.value)
    assert registry.names() == []


def test_a_module_that_fails_to_import_is_reported_with_its_error(modules):
    """An exception while importing (here a build() error) names the spec and the error."""
    name = modules.write(
        """
        from supervisor.workflows import workflow
        broken = workflow("broken").build()
        """
    )
    with pytest.raises(
        WorkflowRegistrationError,
        match=f"workflow spec '{name}:broken': importing '{name}' raised WorkflowDefinitionError: "
        "workflow 'broken': has no steps",
    ):
        registry.load([f"{name}:broken"], python_path=[modules.folder])


def test_two_workflows_with_one_name_are_refused(modules):
    """Two different workflows under one name are refused, naming both specs."""
    first = modules.write(FLOWS)
    second = modules.write(FLOWS)
    with pytest.raises(
        WorkflowRegistrationError,
        match=f"workflow spec '{second}:one': a workflow named 'one' is already given by "
        f"'{first}:one'",
    ):
        registry.load([f"{first}:one", f"{second}:one"], python_path=[modules.folder])
    assert registry.names() == []
    registry.load([f"{first}:one"], python_path=[modules.folder])
    with pytest.raises(
        WorkflowRegistrationError, match=f"already registered \\(from {first}:one\\)"
    ):
        registry.load([f"{second}:one"], python_path=[modules.folder])


def test_loading_the_same_workflow_twice_is_harmless(modules):
    """The same object under the same name, from two specs or two loads, registers once."""
    name = modules.write(FLOWS)
    registry.load([f"{name}:one", f"{name}:both"], python_path=[modules.folder])
    registry.load([f"{name}:one"], python_path=[modules.folder])
    assert registry.names() == ["one", "two"]


def test_a_workflow_built_in_main_is_refused(modules):
    """A workflow whose module is __main__ cannot be imported by a step worker: refused."""
    name = modules.write(
        """
        from supervisor.workflows import workflow
        flow = workflow("main-flow").task("t", handler=print).build()
        """
    )
    registry.add_path([modules.folder])
    module = __import__(name)
    import dataclasses

    in_main = dataclasses.replace(module.flow, module="__main__")
    with pytest.raises(
        WorkflowRegistrationError, match="is defined in __main__, which a step worker"
    ):
        registry.register(in_main)
    module.in_main = in_main
    with pytest.raises(WorkflowRegistrationError, match=f"workflow spec '{name}:in_main': "):
        registry.load([f"{name}:in_main"])


def test_a_branch_cannot_be_registered_on_its_own():
    """register() refuses a branch and a builder, saying what to do instead."""
    branch = workflow.branch("b").task("t", handler=print).build()
    with pytest.raises(WorkflowRegistrationError, match="'b' is a branch"):
        registry.register(branch)
    with pytest.raises(WorkflowRegistrationError, match="is not a built workflow"):
        registry.register(workflow("w").task("t", handler=print))  # type: ignore[arg-type]


def test_register_in_process():
    """register() adds a workflow built in an importable module."""
    flow = workflow("local").task("t", handler=print).build()
    registry.register(flow)
    assert registry.find("local") is flow
    assert registry.registered() == {"local": flow}


def test_a_script_registering_its_own_workflow_is_told_why_not():
    """A workflow built in a script run as __main__ is refused at registration, saying why."""
    script = (
        "from supervisor.workflows import registry, workflow\n"
        "flow = workflow('scripted').task('t', handler=print).build()\n"
        "registry.register(flow)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1
    assert (
        "register(): workflow 'scripted' is defined in __main__, which a step worker cannot "
        "import: define it in an importable module"
    ) in done.stderr
