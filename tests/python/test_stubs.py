"""The type stubs (epode/__init__.pyi) describe what the module really has."""

import ast
import os

import epode

STUB = os.path.join(os.path.dirname(epode.__file__), "__init__.pyi")


def stub_names():
    tree = ast.parse(open(STUB, encoding="utf-8").read())
    top, classes = set(), {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            top.add(node.name)
            members = set()
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    members.add(item.name)
                elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    members.add(item.target.id)
            bases = [b.id for b in node.bases if isinstance(b, ast.Name)]
            classes[node.name] = (members, bases)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            top.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            top.add(node.target.id)
    return top, classes


def members_with_bases(classes, name):
    members, bases = classes[name]
    out = set(members)
    for b in bases:
        if b in classes:
            out |= members_with_bases(classes, b)
        elif b == "NamedTuple":
            # tuple's own methods (count, index) come with the base: a
            # stub that declared them again would fail mypy --strict
            out |= {a for a in dir(tuple) if not a.startswith("_")}
    return out


def test_every_public_name_has_a_stub():
    top, _ = stub_names()
    missing = [n for n in epode.__all__ if n not in top]
    assert not missing, missing


def test_every_public_member_of_the_classes_has_a_stub():
    _, classes = stub_names()
    problems = []
    for name, (members, _) in classes.items():
        cls = getattr(epode, name, None)
        if not isinstance(cls, type) or issubclass(cls, BaseException):
            continue
        have = members_with_bases(classes, name)
        for attr in dir(cls):
            if attr.startswith("_"):
                continue
            if attr not in have:
                problems.append("%s.%s" % (name, attr))
    assert not problems, problems
