"""Write the image build's requirement files from the pyproject files alone.

    python requirements.py OUT_DIR     (run in the build context's root)

OUT_DIR/requirements.txt: the product's runtime dependencies (`[project] dependencies`).
OUT_DIR/simulators.txt: the `simulators` extra and the harness's own dependencies (those of
loadtest/pyproject.toml that are not pushfan itself). Installing them before the code lets
a code change reuse the dependency layers. Standard library only.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path


def requirements(product: dict, harness: dict) -> tuple[list[str], list[str]]:
    """(runtime, simulators) requirement lines from the two `[project]` tables."""
    runtime = list(product["dependencies"])
    extra = list(product["optional-dependencies"]["simulators"])
    own = [d for d in harness["dependencies"] if not d.split("[")[0].strip() == "pushfan"]
    return runtime, extra + own


def main() -> int:
    out = Path(sys.argv[1])
    product = tomllib.loads(Path("pyproject.toml").read_text())["project"]
    harness = tomllib.loads(Path("loadtest/pyproject.toml").read_text())["project"]
    runtime, simulators = requirements(product, harness)
    (out / "requirements.txt").write_text("\n".join(runtime) + "\n")
    (out / "simulators.txt").write_text("\n".join(simulators) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
