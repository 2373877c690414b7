"""Print the fault catalogue as the Markdown tables of docs/simulator.md (`rl.faults.catalogue_markdown`)."""

from rl.faults import catalogue_markdown

print(catalogue_markdown(), end="")
