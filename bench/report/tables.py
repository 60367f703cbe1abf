"""Paper-style tables (LaTeX, Markdown, CSV): main comparison, ablation, per-scene.

Ranking is done here, not by pandas' Styler.highlight_*: cells are ranked on the values *as
displayed* (rounded to the metric's decimals), ties share the better rank (competition ranking:
1, 1, 3), and the 1st/2nd/3rd cells are wrapped in ``\\rankfirst``/``\\ranksecond``/``\\rankthird``,
defined with ``\\providecommand`` so a paper can restyle them. Reported (published) rows are a
separate block and are not ranked unless ``rank_reported``.

With several seeds a cell reads "mean ± std" (std over seeds; the seed count in a footnote, and in
the cell where it has fewer). The ablation table adds per scene group the paired difference to the
reference variant with its 95% interval, * where significant after Holm's correction
(bench.report.stats). Column groups of a deliberate subset of a dataset's scenes say so:
"Synthetic, 4 of 5 scenes". The SSIM column of a dataset is its protocol's headline variant and
a footnote names the convention (window, data range) of each SSIM and LPIPS column; a reported
value published in another convention of the same family (bench.metrics.registry
CONVENTION_FAMILIES: SSIM window and range, LPIPS input range) carries a dagger and a footnote
naming the source's convention.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bench.atomic import write_text
from bench.metrics.protocols import headline_ssim
from bench.metrics.regions import COMPONENT_REGIONS, REGION_METRICS
from bench.metrics.registry import CONVENTION_FAMILIES, METRICS, arrow, family
from bench.report import labels

RANK_MACROS = ("rankfirst", "ranksecond", "rankthird")
LATEX_PREAMBLE = (
    "\\providecommand{\\rankfirst}[1]{\\textbf{#1}}\n"
    "\\providecommand{\\ranksecond}[1]{\\underline{#1}}\n"
    "\\providecommand{\\rankthird}[1]{\\textit{#1}}\n"
)
DAGGER = "\u2020"
NOT_RECORDED = "not recorded (bench eval)"


@dataclass
class Column:
    """group: upper header (dataset or metric); header: lower header; metric: ranking direction/decimals."""

    group: str
    header: str
    metric: str
    higher_is_better: bool | None = None  # overrides the metric registry (columns that are no metric)
    decimals: int | None = None
    ranked: bool = True  # False for differences: a rank of deltas would repeat the value column's
    signed: bool = False  # print "+" on positive values (differences)

    @property
    def up(self) -> bool:
        return METRICS[self.metric].higher_is_better if self.higher_is_better is None else self.higher_is_better

    @property
    def digits(self) -> int:
        return METRICS[self.metric].decimals if self.decimals is None else self.decimals


@dataclass
class Table:
    """A rendered-agnostic table. values (R,C) float, NaN = empty; notes (R,C) text for empty cells;
    marks (R,C) suffixes such as a dagger; reported (R,) rows from published numbers."""

    name: str
    caption: str
    rows: list[str]
    columns: list[Column]
    values: np.ndarray
    notes: list[list[str]]
    marks: list[list[str]]
    reported: list[bool]
    footnotes: list[str] = field(default_factory=list)


def displayed(value: float, col: Column) -> str:
    """The value as printed in every table format."""
    return f"{value:{'+' if col.signed else ''}.{col.digits}f}"


def rank_table(table: Table, rank_reported: bool = False) -> np.ndarray:
    """(R,C) int ranks on displayed values, ties share the better rank; 0 = not ranked."""
    ranks = np.zeros(table.values.shape, dtype=int)
    eligible = [i for i, rep in enumerate(table.reported) if rank_reported or not rep]
    for c, col in enumerate(table.columns):
        if not col.ranked:
            continue
        sign = 1.0 if col.up else -1.0
        shown = {i: sign * float(displayed(table.values[i, c], col))
                 for i in eligible if not math.isnan(table.values[i, c])}
        for i, v in shown.items():
            ranks[i, c] = 1 + sum(other > v for other in shown.values())
    return ranks


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\^{}", "\u2020": r"$^\dagger$",
                  "\u2191": r"$\uparrow$", "\u2193": r"$\downarrow$", "\u00b1": r"$\pm$", "\u0394": r"$\Delta$"}


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters in one pass (a dagger becomes ``$^\\dagger$``)."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def _cell_latex(table: Table, ranks: np.ndarray, r: int, c: int) -> str:
    v, col = table.values[r, c], table.columns[c]
    if math.isnan(v):
        return "--"
    text = displayed(v, col)
    ranked = f"\\{RANK_MACROS[ranks[r, c] - 1]}{{{text}}}" if 1 <= ranks[r, c] <= 3 else text
    return ranked + latex_escape(table.marks[r][c])  # the rank styles the value, not its ± or interval


def to_latex(table: Table, rank_reported: bool = False) -> str:
    """A booktabs ``table`` environment with rank macros, built with pandas' Styler."""
    ranks = rank_table(table, rank_reported)
    cols = pd.MultiIndex.from_tuples([(latex_escape(c.group), latex_escape(c.header)) for c in table.columns])
    rows = [latex_escape(r) for r in table.rows]
    body = pd.DataFrame([[_cell_latex(table, ranks, r, c) for c in range(len(table.columns))]
                         for r in range(len(rows))], index=rows, columns=cols)
    tabular = body.style.to_latex(hrules=True, multicol_align="c", column_format="l" + "c" * len(cols))
    lines = tabular.splitlines()
    lines.insert(3, _cmidrules(table.columns))
    n_measured = sum(not r for r in table.reported)
    if 0 < n_measured < len(table.rows):
        mid = lines.index("\\midrule")
        lines.insert(mid + 1 + n_measured, "\\midrule")
    notes = [latex_escape(n) for n in table.footnotes]
    foot = "\\par\\smallskip{\\footnotesize " + " \\\\ ".join(notes) + "}\n" if notes else ""
    return ("% generated by `bench table`; \\rankfirst/\\ranksecond/\\rankthird mark ranks on displayed values\n"
            + LATEX_PREAMBLE + "\\begin{table}[t]\n\\centering\n"
            + f"\\caption{{{latex_escape(table.caption)}}}\n" + "\n".join(lines) + "\n" + foot
            + "\\end{table}\n")


def _cmidrules(columns: list[Column]) -> str:
    """``\\cmidrule`` under each column group of the first header row."""
    rules, start = [], 0
    for i in range(1, len(columns) + 1):
        if i == len(columns) or columns[i].group != columns[start].group:
            rules.append(f"\\cmidrule(lr){{{start + 2}-{i + 1}}}")
            start = i
    return " ".join(rules)


def cell_text(table: Table, r: int, c: int) -> str:
    v = table.values[r, c]
    if math.isnan(v):
        return table.notes[r][c] or "–"
    return displayed(v, table.columns[c]) + table.marks[r][c]


def to_markdown(table: Table, rank_reported: bool = False) -> str:
    """GitHub Markdown: 1st bold, 2nd italic, 3rd with a superscript 3."""
    ranks = rank_table(table, rank_reported)
    style = {1: "**{}**", 2: "_{}_", 3: "{}³"}
    head = ["Method"] + [f"{c.group} {c.header}" for c in table.columns]
    lines = [f"**{table.caption}**", "", "| " + " | ".join(head) + " |",
             "|" + "|".join(["---"] + [":---:"] * len(table.columns)) + "|"]
    for r, label in enumerate(table.rows):
        cells = [cell_text(table, r, c) if math.isnan(table.values[r, c]) else
                 style.get(ranks[r, c], "{}").format(displayed(table.values[r, c], col))
                 + table.marks[r][c].replace("*", "\\*")  # a significance mark, not emphasis
                 for c, col in enumerate(table.columns)]
        lines.append("| " + " | ".join([label] + cells) + " |")
    lines += [""] + [f"{n}  " for n in table.footnotes]
    return "\n".join(lines).rstrip() + "\n"


def to_csv(table: Table) -> str:
    """Machine-readable: full-precision values, the note for empty cells, a reported flag."""
    data = {"row": table.rows, "reported": table.reported}
    for c, col in enumerate(table.columns):
        data[f"{col.group} {col.header}"] = [_csv_value(table, r, c) for r in range(len(table.rows))]
    return pd.DataFrame(data).to_csv(index=False)


def _csv_value(table: Table, r: int, c: int):
    v = table.values[r, c]
    return table.notes[r][c] if math.isnan(v) else v


# ---------------------------------------------------------------- building tables from summaries

def blur_table(stats: pd.DataFrame) -> Table:
    """Synthetic blur accuracy per variant and scene: each run's mean over its saved training views,
    then mean ± std over seeds."""
    keys = ["rms_mae_px", "rms_corr", "mask_iou"]
    per_run = stats.groupby(["variant", "scene", "seed"], sort=False)[keys].mean()
    agg = per_run.groupby(level=["variant", "scene"], sort=False).agg(["mean", "std", "count"])
    variants = labels.order_variants(stats.variant.unique())
    scenes = list(dict.fromkeys(stats.scene))
    cols = [("rms_mae_px", "RMS radius MAE (px) \u2193", False), ("rms_corr", "RMS radius corr. \u2191", True),
            ("mask_iou", "mask IoU \u2191", True)]
    columns = [Column(s, label, key, higher_is_better=up, decimals=3) for s in scenes for key, label, up in cols]
    most = int(per_run.groupby(level=["variant", "scene"]).size().max())
    values, notes, marks = _empty(len(variants), len(columns))
    for r, v in enumerate(variants):
        for c, col in enumerate(columns):
            if (v, col.group) in agg.index:
                cell = agg.loc[(v, col.group), col.metric]
                values[r, c] = cell["mean"]
                marks[r][c] = _spread(cell["std"], int(cell["count"]), col, most)
    return Table("blur_accuracy", "Synthetic scenes: predicted vs ground-truth blur (training views)",
                 variants, columns, values, notes, marks, [False] * len(variants), _seed_note(most))


def load_reported(paths=None) -> pd.DataFrame:
    """Published rows from results/published/*.csv (or the given files), read and checked by
    bench.report.paper_check.load_published; a row whose metric names alternatives
    (``ssim|ssim_3dgs``) is one row per alternative, ``alternatives`` naming them."""
    from bench.report.paper_check import load_published

    cols = ["table", "row", "variant", "dataset", "metric", "value", "source", "alternatives"]
    published = load_published(paths)
    return published[cols] if not published.empty else pd.DataFrame(columns=cols)


def _empty(n_rows: int, n_cols: int):
    return np.full((n_rows, n_cols), np.nan), [[""] * n_cols for _ in range(n_rows)], \
        [[""] * n_cols for _ in range(n_rows)]


def _add_reported(table: Table, reported: pd.DataFrame, which: str, keys: list[tuple[str, str]]) -> Table:
    """Append reported rows of ``reported[table == which]``; keys[c] = (dataset, metric) per column."""
    rep = reported[reported["table"] == which]
    if "alternatives" not in rep.columns:
        rep = rep.assign(alternatives="")
    unsettled = dict(zip(zip(rep.dataset, rep.metric), rep.alternatives))
    new_rows, new_vals, new_marks, substituted, open_ = [], [], [], set(), set()
    for row, g in rep.groupby("row", sort=False):
        lookup = {(d, m): v for d, m, v in zip(g.dataset, g.metric, g.value)}
        vals, marks = [], []
        for dataset, metric in keys:
            v, source_metric = _reported_value(lookup, dataset, metric)
            alternatives = unsettled.get((dataset, source_metric), "")
            if alternatives:
                open_.add(alternatives)
            elif source_metric not in (None, metric):
                substituted.add(source_metric)
            vals.append(np.nan if v is None else float(v))
            marks.append(DAGGER if alternatives or source_metric not in (None, metric) else "")
        if not all(math.isnan(v) for v in vals):
            new_rows.append(f"{row} (reported)")
            new_vals.append(vals)
            new_marks.append(marks)
    if not new_rows:
        return table
    table.rows += new_rows
    table.values = np.vstack([table.values, np.array(new_vals)])
    table.notes += [[""] * len(keys) for _ in new_rows]
    table.marks += new_marks
    table.reported += [True] * len(new_rows)
    if substituted:
        table.footnotes.append(f"{DAGGER} reported in the source's convention, not this column's: "
                               + "; ".join(f"{METRICS[m].label} = {METRICS[m].convention}" for m in sorted(substituted))
                               + ".")
    for alternatives in sorted(open_):
        table.footnotes.append(f"{DAGGER} reported as one of {alternatives}; which one is not established "
                               "(results/published/README.md).")
    sources = ", ".join(sorted(set(rep["source"].dropna())))
    table.footnotes.append(f"(reported): numbers from {sources}; not measured here.")
    return table


def _reported_value(lookup: dict, dataset: str, metric: str) -> tuple[float | None, str | None]:
    """(published value, the metric it was reported as) for a column; a column takes another
    convention of its metric's family (an SSIM window or range, an LPIPS input range) when its own
    is not published (marked with a dagger)."""
    if (dataset, metric) in lookup:
        return lookup[(dataset, metric)], metric
    for other in family(metric):
        if (dataset, other) in lookup:
            return lookup[(dataset, other)], other
    return None, None


def convention_notes(metrics) -> list[str]:
    """One footnote per SSIM or LPIPS convention shown: the convention its measured cells follow."""
    metrics = set(metrics)
    return [f"{METRICS[m].label}: {METRICS[m].convention}." for f in CONVENTION_FAMILIES for m in f if m in metrics]


def group_label(summary: pd.DataFrame, group: str) -> str:
    """Display name of a scene group; "Synthetic, 4 of 5 scenes" when the sweep planned a subset."""
    hit = summary[summary.group == group]
    label = labels.dataset_label(group)
    if hit.empty or not hit["n_dataset"].notna().any():
        return label
    planned, total = int(hit["n_planned"].iloc[0]), int(hit["n_dataset"].iloc[0])
    return f"{label}, {planned} of {total} scenes" if planned < total else label


def _spread(std: float, n: int, col: Column, most: int) -> str:
    """Cell suffix " ± std" over seeds, with " (n=k)" where the cell has fewer seeds than the table."""
    if n < 2 or not math.isfinite(std):
        return ""
    return f" \u00b1 {std:.{col.digits}f}" + (f" (n={n})" if n < most else "")


def _seed_note(most: int) -> list[str]:
    """The footnote naming the seed count behind the ± values (none for one seed)."""
    if most < 2:
        return []
    return [f"\u00b1: standard deviation over seeds ({most} seeds; a cell with fewer says n); for a scene "
            "average, that of the average of one run per scene."]


def _summary_cell(summary: pd.DataFrame, variant: str, group: str, col: Column, most: int) -> tuple[float, str, str]:
    """(scene average, note, ± mark) of a variant in a scene group (a dataset or ``dataset/blur_type``)."""
    hit = summary[(summary.variant == variant) & (summary.group == group) & (summary.metric == col.metric)]
    if hit.empty:
        ran = ((summary.variant == variant) & (summary.group == group)).any()
        # Results written before this metric existed load fine; `bench eval` adds it from the renders.
        return np.nan, NOT_RECORDED if ran else "no runs", ""
    row = hit.iloc[0]
    if row["missing"]:
        return float(row["value"]), f"missing: {row['missing']}", ""
    return float(row["value"]), ("n/a" if row["reason"] else ""), _spread(row["std"], int(row["n_seeds"]), col, most)


def _reason_notes(summary: pd.DataFrame, metrics) -> list[str]:
    """One footnote per metric whose value was not computed, with the recorded reason."""
    hit = summary[summary.metric.isin(list(metrics)) & (summary.reason != "") & (summary.missing == "")]
    return [f"n/a {METRICS[m].label}: {r}"
            for m, r in hit[["metric", "reason"]].drop_duplicates("metric").itertuples(index=False)]


def _fill(columns: list[Column], rows: list[str], cell) -> tuple[np.ndarray, list[list[str]], list[list[str]]]:
    """values, notes, marks of a table whose cell (r, c) is ``cell(row, column) -> (value, note, mark)``."""
    values, notes, marks = _empty(len(rows), len(columns))
    for r, row in enumerate(rows):
        for c, col in enumerate(columns):
            values[r, c], notes[r][c], marks[r][c] = cell(row, c, col)
    return values, notes, marks


def main_table(df: pd.DataFrame, summary: pd.DataFrame, reported: pd.DataFrame | None = None) -> Table:
    """Rows = variants, column groups = datasets (and blur-type groups) x (PSNR, SSIM, LPIPS), scene means;
    and FPS (rendering speed, ``_fps_cell``) where any run of the sweep has a speed record."""
    groups = labels.order_groups(summary.group.unique())
    variants = labels.order_variants(summary.variant.unique())
    speeds = _speeds(df)
    fps = () if speeds is None else (FPS,)
    keys = [(g, m) for g in groups
            for m in ("psnr", headline_ssim(df.protocol[df.dataset == g.partition("/")[0]].dropna()), "lpips", *fps)]
    columns = [_fps_column(group_label(summary, d), FPS_HEADER, speeds) if m == FPS else
               Column(group_label(summary, d), f"{METRICS[m].label} {arrow(m)}", m) for d, m in keys]
    most = int(summary["n_seeds"].max())

    def cell(v, c, col):
        group, metric = keys[c]
        if metric == FPS:
            dataset, _, blur = group.partition("/")
            return _fps_cell(speeds, v, dataset, blur_type=blur or None)
        return _summary_cell(summary, v, group, col, most)

    values, notes, marks = _fill(columns, variants, cell)
    table = Table("main", "Main comparison (mean over scenes of the mean over seeds)", list(variants), columns,
                  values, notes, marks, [False] * len(variants),
                  _reason_notes(summary, {m for _, m in keys}) + convention_notes(m for _, m in keys)
                  + _seed_note(most) + labels.eval_mode_notes(variants) + _fps_notes(speeds))
    return _add_reported(table, reported, "main", keys) if reported is not None else table


# ---------------------------------------------------------------- rendering speed (results.json's speed block)

FPS = "fps"  # a column key beside the metrics; no metric of the registry
FPS_HEADER = "FPS \u2191"


def _speeds(df: pd.DataFrame) -> pd.DataFrame | None:
    """``collect.run_speeds`` of the collected runs when any has a speed record, else None (no FPS column)."""
    from bench.report.collect import run_speeds

    speeds = run_speeds(df)
    return speeds if speeds["fps"].notna().any() else None


def _fps_column(group: str, header: str, speeds: pd.DataFrame) -> Column:
    """An FPS column: higher is better, one decimal; ranked only when every figure comes from one device."""
    return Column(group, header, FPS, higher_is_better=True, decimals=1,
                  ranked=speeds["fps_device"].dropna().nunique() == 1)


def _fps_cell(speeds: pd.DataFrame, variant: str, dataset: str, blur_type: str | None = None,
              scene: str | None = None) -> tuple[float, str, str]:
    """(mean FPS over the variant's runs of the dataset, blur type or scene that have a speed record, note,
    " (k of n runs)" when some of those runs have none); n/a where none has."""
    hit = speeds[(speeds.variant == variant) & (speeds.dataset == dataset)]
    if blur_type is not None:
        hit = hit[hit.blur_type == blur_type]
    if scene is not None:
        hit = hit[hit.scene == scene]
    if hit.empty:
        return np.nan, "no runs", ""
    measured = hit["fps"].dropna()
    if measured.empty:
        return np.nan, "n/a", ""
    return float(measured.mean()), "", "" if len(measured) == len(hit) else f" ({len(measured)} of {len(hit)} runs)"


def _fps_notes(speeds: pd.DataFrame | None) -> list[str]:
    """The footnote of the FPS columns: what is measured, and on which device(s)."""
    if speeds is None:
        return []
    devices = sorted(set(speeds["fps_device"].dropna()))
    what = ("test views rendered per second at the test resolution (sharp renders, median over timed passes; "
            "`bench fps`), mean over the runs with a speed record; n/a: a run measured before results recorded "
            "it (`bench fps RUN_DIR` adds it)")
    if len(devices) == 1:
        return [f"FPS ({devices[0]}): {what}."]
    return [f"FPS: {what}; measured on {len(devices)} devices, comparable only on one (not ranked): "
            + "; ".join(devices) + "."]


def _interval_mark(row, col: Column) -> str:
    """" [lo, hi]" of a stats row, with * when significant; "" where the row has no interval (no spread
    between runs to test against: bench.report.stats.t_test)."""
    if np.isnan(row.ci_low) or np.isnan(row.ci_high):
        return ""
    return f" [{displayed(row.ci_low, col)}, {displayed(row.ci_high, col)}]" + ("*" if row.significant else "")


def _delta_cell(stats: pd.DataFrame, summary: pd.DataFrame, variant: str, group: str, col: Column,
                reference: str) -> tuple[float, str, str]:
    """(paired delta, note, " [lo, hi]" with * when significant) of a variant against the reference."""
    if variant == reference:
        return np.nan, "reference", ""
    _, note, _ = _summary_cell(summary, variant, group, col, 1)
    if note.startswith("missing") or note in ("no runs", NOT_RECORDED):  # the table's missing marks stay
        return np.nan, note, ""
    hit = stats[(stats.variant == variant) & (stats.group == group) & (stats.metric == col.metric)]
    if hit.empty:
        return np.nan, "no pairs", ""
    row = hit.iloc[0]
    if row.missing:  # the reference lacks a planned scene: a subset's delta, blank like an average
        return np.nan, f"missing: {row.missing}", ""
    return float(row.delta), "", _interval_mark(row, col)


def ablation_table(summary: pd.DataFrame, reported: pd.DataFrame | None = None, metric: str = "psnr",
                   stats: pd.DataFrame | None = None) -> Table:
    """The paper's ablation shape: rows "w/o ..." down to "Full", per dataset (and blur type) the scene
    average and, given ``stats`` (bench.report.stats.compare), the paired difference to its reference
    with its 95% interval."""
    from bench.report.stats import interval_note

    datasets = labels.order_groups(summary.group.unique())
    present = set(summary.variant.unique())
    variants = [v for v in labels.ABLATION_ROWS if v in present and v != "full"]
    others = labels.order_variants(present - set(labels.ABLATION_ROWS))
    variants += [v for v in others if not v.startswith("full@")] + (["full"] if "full" in present else [])
    variants += [v for v in others if v.startswith("full@")]
    shown = None if stats is None else stats[(stats.metric == metric) & stats.group.isin(datasets)]
    per_group = 1 if shown is None or shown.empty else 2
    keys = [(d, metric if k == 0 else "delta") for d in datasets for k in range(per_group)]
    reference = None if per_group == 1 else shown.reference.iloc[0]
    head = f"{METRICS[metric].label} {arrow(metric)}"
    columns = [Column(group_label(summary, d), head, metric) if k == metric else
               Column(group_label(summary, d), f"\u0394 vs {labels.ablation_label(reference)} [95% CI]", metric,
                      ranked=False, signed=True) for d, k in keys]
    most = int(summary["n_seeds"].max())

    def cell(v, c, col):
        group, kind = keys[c]
        if kind == metric:
            return _summary_cell(summary, v, group, col, most)
        return _delta_cell(shown, summary, v, group, col, reference)

    values, notes, marks = _fill(columns, variants, cell)
    foot = (_reason_notes(summary, [metric]) + convention_notes([metric]) + _seed_note(most)
            + labels.eval_mode_notes(variants))
    if reference is not None:
        foot.append(interval_note(int(shown.n_seeds.min()), labels.ablation_label(reference), shown.test.iloc[0]))
    table = Table("ablation", f"Ablation ({METRICS[metric].label}, mean over scenes)",
                  [labels.ablation_label(v) for v in variants], columns, values, notes, marks,
                  [False] * len(variants), foot)
    return _add_reported(table, reported, "ablation", keys) if reported is not None else table


def per_scene_tables(df: pd.DataFrame, per_scene: pd.DataFrame, summary: pd.DataFrame,
                     expected: dict | None = None) -> list[Table]:
    """One table per dataset and metric: rows = variants, columns = scenes + the dataset average.

    Scenes: those the sweep planned (``expected``, as for ``collect.dataset_summary``), else the
    data registry's, then any other scene with runs.
    """
    from bench.report.collect import expected_scenes

    tables = []
    for d in labels.order_datasets(per_scene.dataset.unique()):
        sub = per_scene[per_scene.dataset == d]
        if expected is not None and d in expected:
            scenes = [x if isinstance(x, str) else x[0] for x in expected[d]]
        else:
            scenes = expected_scenes(d, list(sub.scene.unique()))
        scenes += sorted(set(sub.scene) - set(scenes))
        variants = labels.order_variants(sub.variant.unique())
        shown = ("psnr", headline_ssim(df.protocol[df.dataset == d].dropna()), "lpips", "psnr_dyn", "ssim_dyn",
                 "lpips_dyn", *REGION_METRICS)  # region metrics: synthetic data only, absent elsewhere
        metrics = [m for m in shown if sub.loc[sub.metric == m, "mean"].notna().any()]
        averages = labels.order_groups(summary.loc[summary.dataset == d, "group"].unique())
        most = int(sub["n_seeds"].max())
        for m in metrics:
            group = f"{METRICS[m].label} {arrow(m)}"
            columns = [Column(group, s, m) for s in scenes]
            columns += [Column(group, "Avg." + (f" {a.partition('/')[2]}" if "/" in a else ""), m) for a in averages]

            def cell(v, c, col):
                if c >= len(scenes):
                    return _summary_cell(summary, v, averages[c - len(scenes)], col, most)
                hit = sub[(sub.variant == v) & (sub.scene == scenes[c]) & (sub.metric == m)]
                if hit.empty:
                    return np.nan, "no run", ""
                return float(hit["mean"].iloc[0]), "", _spread(hit["std"].iloc[0], int(hit["n_seeds"].iloc[0]), col, most)

            values, notes, marks = _fill(columns, variants, cell)
            tables.append(Table(f"per_scene_{d}_{m}", f"{group_label(summary, d)}: {METRICS[m].label} per scene "
                                f"(mean over seeds)", list(variants), columns, values, notes, marks,
                                [False] * len(variants),
                                convention_notes([m]) + _seed_note(most) + labels.eval_mode_notes(variants)))
        speeds = _speeds(df[df.dataset == d])
        if speeds is not None:
            tables.append(_per_scene_fps(speeds, d, scenes, averages, variants, group_label(summary, d)))
    return tables


def _per_scene_fps(speeds: pd.DataFrame, dataset: str, scenes: list[str], averages: list[str], variants,
                   label: str) -> Table:
    """The rendering speed of each variant per scene of ``dataset`` and per scene group (``_fps_cell``)."""
    columns = [_fps_column(FPS_HEADER, s, speeds) for s in scenes]
    columns += [_fps_column(FPS_HEADER, "Avg." + (f" {a.partition('/')[2]}" if "/" in a else ""), speeds)
                for a in averages]

    def cell(v, c, col):
        if c < len(scenes):
            return _fps_cell(speeds, v, dataset, scene=scenes[c])
        return _fps_cell(speeds, v, dataset, blur_type=averages[c - len(scenes)].partition("/")[2] or None)

    values, notes, marks = _fill(columns, variants, cell)
    return Table(f"per_scene_{dataset}_fps", f"{label}: rendering speed per scene (mean over seeds)",
                 list(variants), columns, values, notes, marks, [False] * len(variants),
                 _fps_notes(speeds) + labels.eval_mode_notes(variants))


_COUNT_FIELDS = {"scenes": "n_scenes", "seeds": "n_seeds", "df": "df"}  # diagnostics "runs" header -> stats column


@dataclass(frozen=True)
class DiagnosticRow:
    """One row of the diagnostics table: a component (ablated variant), a region metric it addresses,
    and where the variant ran: ``scenes`` of ``dataset``; ``group`` is the stats row that scores
    exactly those scenes (``dataset:scene`` for one scene, else the dataset row, which averages the
    scenes with pairs)."""

    variant: str
    metric: str
    dataset: str
    scenes: tuple[str, ...]

    @property
    def group(self) -> str:
        return f"{self.dataset}:{self.scenes[0]}" if len(self.scenes) == 1 else self.dataset

    @property
    def label(self) -> str:
        where = labels.dataset_label(self.dataset)
        where += f" / {self.scenes[0]}" if len(self.scenes) == 1 else f", mean of {', '.join(self.scenes)}"
        return f"{labels.ablation_label(self.variant)}: {METRICS[self.metric].label} {arrow(self.metric)} ({where})"


def _ran_on(stats: pd.DataFrame, variant: str, dataset: str) -> tuple[str, ...]:
    """The scenes of ``dataset`` where ``variant`` has a paired whole-image PSNR (its ``dataset:scene``
    stats rows), in the stats' order."""
    prefix = f"{dataset}:"
    hit = stats[(stats.variant == variant) & (stats.metric == "psnr") & stats.group.str.startswith(prefix)
                & np.isfinite(stats.delta.astype(float))]
    return tuple(g[len(prefix):] for g in dict.fromkeys(hit.group))


def _diagnostic_layout(stats: pd.DataFrame) -> list[DiagnosticRow]:
    """One DiagnosticRow per (component, region metric) of COMPONENT_REGIONS and dataset where its region
    metric has a finite paired delta (real data, without region metrics, gives none).

    Blur-type groups (``dataset/motion``) are left out: a variant that ran on one scene would repeat
    that scene's numbers under its dataset and its blur type, and leave the other blur type blank.
    """
    datasets = stats[np.isfinite(stats.delta.astype(float)) & ~stats.group.str.contains("[:/]")]
    rows = []
    for variant, metrics in COMPONENT_REGIONS.items():
        for metric in metrics:
            hit = datasets[(datasets.variant == variant) & (datasets.metric == metric)]
            for d in labels.order_datasets(hit.group.unique()):
                scenes = _ran_on(stats, variant, d)
                rows += [DiagnosticRow(variant, metric, d, scenes)] if scenes else []
    return rows


def _stats_row(stats: pd.DataFrame, variant: str, group: str, metric: str) -> pd.Series | None:
    """The stats row of (variant, group, metric) with a finite delta, else None."""
    hit = stats[(stats.variant == variant) & (stats.group == group) & (stats.metric == metric)]
    return hit.iloc[0] if len(hit) and np.isfinite(float(hit.delta.iloc[0])) else None


def _region_cell(stats: pd.DataFrame, row: DiagnosticRow, col: Column) -> tuple[float, str, str]:
    """(delta, note, mark) on the row's region metric; the mark says " (k of n scenes)" when the region
    was paired in fewer scenes than the whole image, with its own df when that differs."""
    region = _stats_row(stats, row.variant, row.group, row.metric)
    if region is None:
        return np.nan, "no pairs", ""
    mark = _interval_mark(region, col)
    whole = _stats_row(stats, row.variant, row.group, "psnr")
    if whole is not None and int(region.n_scenes) < int(whole.n_scenes):
        df = f", df {region.df:.0f}" if "df" in region and np.isfinite(float(region.df)) else ""
        mark += f" ({int(region.n_scenes)} of {int(whole.n_scenes)} scenes{df})"
    return float(region.delta), "", mark


def _diagnostic_columns(stats: pd.DataFrame, reference: str) -> list[Column]:
    """Delta on the whole image and on the own region, then the run counts (df when the stats have it)."""
    delta = f"\u0394 vs {reference}"
    columns = [Column(delta, "whole image PSNR [95% CI]", "psnr", ranked=False, signed=True, decimals=2),
               Column(delta, "own region [95% CI]", "psnr", ranked=False, signed=True, decimals=2)]
    heads = [h for h, field_ in _COUNT_FIELDS.items() if field_ in stats.columns]  # df: only where the test has one
    return columns + [Column("runs", head, "psnr", ranked=False, decimals=0) for head in heads]


def diagnostics_table(stats: pd.DataFrame | None) -> Table | None:
    """Per component (COMPONENT_REGIONS: variant -> the region metrics it addresses), one row per region
    metric and dataset: its paired delta against the reference on the whole image (PSNR) and on that
    region metric, each with its 95% interval and * when significant, scored on exactly the scenes the
    variant ran on (DiagnosticRow.group), with that row's scene and seed counts and df. None when the
    sweep has no region metric to show.

    stats: bench.report.stats.compare.
    """
    if stats is None or stats.empty:
        return None
    rows = _diagnostic_layout(stats)
    if not rows:
        return None
    reference = labels.ablation_label(stats.reference.iloc[0])
    columns = _diagnostic_columns(stats, reference)

    def cell(row: DiagnosticRow, c: int, col: Column) -> tuple[float, str, str]:
        if c == 1:
            return _region_cell(stats, row, col)
        whole = _stats_row(stats, row.variant, row.group, "psnr")
        if whole is None:
            return np.nan, "no pairs", ""
        if c == 0:
            return float(whole.delta), "", _interval_mark(whole, col)
        return float(whole[_COUNT_FIELDS[col.header]]), "", ""  # NaN df (permutation test) shows as a dash

    values, notes, marks = _fill(columns, rows, cell)
    return Table("diagnostics", f"Diagnostics: each component against {reference}, on the whole image and on "
                 "its own region, on the scenes it ran on", [r.label for r in rows], columns, values, notes, marks,
                 [False] * len(rows), _diagnostic_notes(stats, rows, reference))


def _diagnostic_notes(stats: pd.DataFrame, rows: list[DiagnosticRow], reference: str) -> list[str]:
    """Footnotes: conventions of the region metrics shown, how a row is scored, how to read an interval."""
    from bench.report.stats import interval_note

    shown = stats[stats.group.isin({r.group for r in rows}) & stats.variant.isin({r.variant for r in rows})]
    test = {"test": shown.test.iloc[0]} if "test" in shown else {}  # the test the stats ran
    foot = [f"{METRICS[m].label}: {METRICS[m].convention}." for m in dict.fromkeys(r.metric for r in rows)]
    foot += ["Own region: the region metric each component addresses (bench.metrics.regions.COMPONENT_REGIONS); "
             "false blur in percentage points (lower is better). Each row is scored on the scenes its variant ran "
             "on: that scene's own statistics when it ran on one, else the mean over those scenes; a region delta "
             "averages the scenes whose test views contain that region (k of n scenes when fewer).",
             "runs: scenes and seeds paired with the reference on the whole image"
             + ("; df: degrees of freedom of its t-test (a dash for the permutation test)." if "df" in stats else "."),
             interval_note(int(shown.n_seeds.min()), reference, **test)]
    return foot


def write_tables(out_dir, tables: list[Table], rank_reported: bool = False) -> list[Path]:
    """Write <name>.tex, <name>.md and <name>.csv for every table (atomically)."""
    out_dir = Path(out_dir)
    paths = []
    for t in tables:
        for ext, text in (("tex", to_latex(t, rank_reported)), ("md", to_markdown(t, rank_reported)),
                          ("csv", to_csv(t))):
            path = out_dir / f"{t.name}.{ext}"
            write_text(path, text)
            paths.append(path)
    return paths
