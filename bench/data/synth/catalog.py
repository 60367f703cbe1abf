"""Every synthetic scene by name: the demo benchmark's families (scenes.py) and the diagnostic ones
(diagnostic.py, which builds on scenes.py's definitions, hence the dispatch lives here)."""

from __future__ import annotations

from bench.data.synth.diagnostic import DIAGNOSTIC
from bench.data.synth.scenes import SceneDef, demo_scene


def make_scene(name: str, seed: int) -> SceneDef:
    """The scene ``<family>_<i>`` (e.g. motion_0, unseen_0) drawn from ``seed`` and its family."""
    family = name.rsplit("_", 1)[0]
    if family in DIAGNOSTIC:
        return DIAGNOSTIC[family](name, seed)
    return demo_scene(name, seed)
