"""Display data for reports: variant order, ablation row labels, dataset labels, fixed colours.

The variant -> ablation-row mapping follows the paper's ablation (docs/method.md §10).
"""

from __future__ import annotations

import zlib

VARIANT_ORDER = ["full", "no_sparsity", "no_shortcut", "no_densification", "no_unseen_views",
                 "unseen_matched_steps", "defocus_kernel", "motion_kernel", "no_blur", "smooth"]

# Ablation table rows, top to bottom: the paper's "w/o ..." rows, this project's kernel variants, Full last.
ABLATION_ROWS = {
    "no_sparsity": "w/o sparsity",
    "no_shortcut": "w/o shortcut",
    "no_densification": "w/o DGD",
    "no_unseen_views": "w/o unseen views",
    "unseen_matched_steps": "w/o unseen views, matched real steps",
    "defocus_kernel": "defocus kernel only",
    "motion_kernel": "motion kernel only",
    "no_blur": "w/o blur model",
    "smooth": "w/ motion smoothness",
    "full": "Full",
}

DATASET_LABELS = {
    "stereo_blur": "Stereo Blur",
    "stereo_blur_d4dgs": "Stereo Blur (D4DGS)",
    "d2rf": "D2RF",
    "synthetic": "Synthetic",
    "diagnostic": "Diagnostic",
}
DATASET_ORDER = ["d2rf", "stereo_blur", "stereo_blur_d4dgs", "synthetic", "diagnostic"]

_COLOURS = {
    "full": "#d62728", "no_sparsity": "#1f77b4", "no_shortcut": "#ff7f0e", "no_densification": "#2ca02c",
    # unseen_matched_steps: a darker purple than no_unseen_views (the pair it separates); every colour here
    # and in _SPARE distinct, or a variant hashed onto a spare would look like a named one
    "no_unseen_views": "#9467bd", "unseen_matched_steps": "#5e3c99", "defocus_kernel": "#8c564b", "motion_kernel": "#e377c2",
    "no_blur": "#7f7f7f",
}
_SPARE = ["#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#c5b0d5", "#c49c94", "#f7b6d2"]


def colour(variant: str) -> str:
    """One fixed colour per variant (the same in every figure and every sweep)."""
    return _COLOURS.get(variant) or _SPARE[zlib.crc32(variant.encode()) % len(_SPARE)]


def order_variants(variants) -> list[str]:
    """Known variants in VARIANT_ORDER, others after them alphabetically; a variant's other
    evaluation modes (``variant@mode``) right after it."""
    def key(label: str):
        base, _, mode = label.partition("@")
        return (VARIANT_ORDER.index(base) if base in VARIANT_ORDER else len(VARIANT_ORDER), base, mode)

    return sorted(set(variants), key=key)


def eval_mode_notes(variants) -> list[str]:
    """One footnote per evaluation mode other than ``last`` among the row labels (``variant@mode``,
    bench.report.collect.variant_label): how that row's numbers were produced."""
    modes = sorted({v.partition("@")[2] for v in variants if "@" in v})
    notes = []
    for mode in modes:
        select, _, steps = mode.partition("+refine")
        what = []
        if select == "best_test":
            what.append("the training state with the best mean test PSNR among the evaluations on the upstream "
                        "schedule (selected on the test set, as the public dydeblur code reports; optimistic)")
        if steps:
            what.append(f"each test camera optimised {steps} steps against its ground-truth test image before "
                        "scoring (Deblur4DGS)")
        notes.append(f"@{mode}: " + "; ".join(what or ["the final state"]) + ".")
    return notes


def order_datasets(datasets) -> list[str]:
    known = [d for d in DATASET_ORDER if d in set(datasets)]
    return known + sorted(set(datasets) - set(known))


def dataset_label(name: str) -> str:
    """Display name of a dataset or of a scene group ``dataset/blur_type``."""
    dataset, _, blur = name.partition("/")
    label = DATASET_LABELS.get(dataset, dataset)
    return f"{label} ({blur})" if blur else label


def order_groups(groups) -> list[str]:
    """Scene groups: datasets in DATASET_ORDER, each followed by its blur-type groups."""
    groups = list(dict.fromkeys(groups))
    datasets = order_datasets({g.partition("/")[0] for g in groups})
    return [g for d in datasets for g in [d] + [x for x in groups if x.startswith(d + "/")] if g in groups]


def ablation_label(variant: str) -> str:
    base, at, mode = variant.partition("@")
    return ABLATION_ROWS.get(base, base) + (f" @{mode}" if at else "")
