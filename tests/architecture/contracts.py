"""A contract type for import-linter (``make lint``): no imports inside functions.

An import inside a function hides a dependency from the import graph (and from the layer contracts);
it is how the old cycles were kept out of sight. Allowed only in the modules that wire everything
(``allowed_modules``) and where a comment on the line or the one above says why (a deliberately
optional or deferred dependency).
"""

from __future__ import annotations

import ast
import importlib.util

from importlinter import Contract, ContractCheck, fields, output


def function_imports(source: str) -> list[tuple[int, str]]:
    """(line, imported module) for every import statement inside a function of ``source``."""
    found = []
    for function in ast.walk(ast.parse(source)):
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            for node in ast.walk(function):
                if isinstance(node, ast.ImportFrom):
                    found.append((node.lineno, "." * node.level + (node.module or "")))
                elif isinstance(node, ast.Import):
                    found.extend((node.lineno, alias.name) for alias in node.names)
    return sorted(set(found))


class NoFunctionImportsContract(Contract):
    type_name = "no_function_imports"

    allowed_modules = fields.SetField(subfield=fields.StringField(), required=False)

    def check(self, graph, verbose: bool) -> ContractCheck:
        allowed = set(self.allowed_modules or ())  # type: ignore[arg-type]
        offences = []
        for module in sorted(graph.modules):
            if module in allowed:
                continue
            spec = importlib.util.find_spec(module)
            if spec is None or not spec.origin or not spec.origin.endswith(".py"):
                continue
            with open(spec.origin, encoding="utf-8") as fh:
                source = fh.read()
            lines = source.splitlines()
            for line, imported in function_imports(source):
                if not any("#" in text for text in lines[max(0, line - 2):line]):  # the line or the one above says why
                    offences.append({"module": module, "line": line, "imported": imported})
        return ContractCheck(kept=not offences, metadata={"offences": offences})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for offence in check.metadata["offences"]:
            output.print_error(f"{offence['module']}:{offence['line']} imports {offence['imported']} inside a "
                               "function; import it at the top (or say on the line why it must wait)", bold=False)
        output.new_line()
