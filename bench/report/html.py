"""The self-contained HTML report: tables (the ablation first), figures (PNG) and comparison videos
(MP4, bench.report.videos) on one page, every file embedded as base64, so report.html alone is the
whole report (the videos are also kept beside it in videos/)."""

from __future__ import annotations

import base64
import html
import math
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from bench.atomic import write_text
from bench.report.tables import Table, cell_text, rank_table

TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 13px; }
th, td { padding: 3px 8px; text-align: center; border-bottom: 1px solid #ddd; }
th { border-bottom: 2px solid #444; } td:first-child { text-align: left; }
.r1 { font-weight: bold; } .r2 { text-decoration: underline; } .r3 { font-style: italic; }
tr.reported td { color: #666; font-style: italic; background: #f6f6f6; }
.missing { color: #a00; font-size: 11px; } .note { color: #a60; }
.reproduced { color: #070; } .not-reproduced { color: #a00; } .not-comparable { color: #666; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
video { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 12px; color: #555; } code { background: #f3f3f3; padding: 0 3px; }
</style></head><body>
<h1>{{ title }}</h1>
<p>Generated {{ generated }} from <code>{{ sweep_dir }}</code>: {{ n_runs }} finished runs,
{{ n_variants }} variants, {{ n_scenes }} scenes. Ranks (bold 1st, underlined 2nd, italic 3rd) use the displayed
rounded values; ties share a rank; reported rows are not ranked{{ rank_note }}.
A dataset average is shown only when every scene the sweep planned has results.</p>
{% if reading %}<p class="reading"><b>How to read the ablation:</b> {{ reading }}</p>{% endif %}
<h2>Tables</h2>
{% for t in tables %}<h3 id="table-{{ t.name }}">{{ t.caption }}</h3>{{ t.html }}{% endfor %}
{% if paper_check %}<h2 id="paper-check">Reproduction check</h2>{{ paper_check }}{% endif %}
<h2>Figures</h2>
{% for f in figures %}<figure id="{{ f.name }}"><img src="data:image/png;base64,{{ f.data }}" alt="{{ f.name }}">
<figcaption>{{ f.name }} (PDF: figures/{{ f.stem }}.pdf)</figcaption></figure>{% endfor %}
{% if videos %}<h2 id="videos">Videos</h2>
<p>Per scene, one frame per test view in time order: the blurry input at the view's time, the ground truth and
each variant's test render (its lowest seed).</p>
{% for v in videos %}<figure id="video-{{ v.stem }}"><video controls muted loop playsinline
src="data:video/mp4;base64,{{ v.data }}"></video>
<figcaption>{{ v.stem }} (videos/{{ v.name }})</figcaption></figure>{% endfor %}{% endif %}
{% if notes %}<h2>Notes</h2><ul>{% for n in notes %}<li class="note">{{ n }}</li>{% endfor %}</ul>{% endif %}
{% if provenance %}<h2>Provenance</h2><table><tr>{% for k in provenance[0] %}<th>{{ k }}</th>{% endfor %}</tr>
{% for row in provenance %}<tr>{% for v in row.values() %}<td>{{ v }}</td>{% endfor %}</tr>{% endfor %}
</table>{% endif %}
</body></html>
"""


def table_html(table: Table, rank_reported: bool = False) -> str:
    """An HTML table with a grouped header, rank classes and reported rows marked."""
    ranks = rank_table(table, rank_reported)
    groups: list[list] = []
    for c in table.columns:
        if groups and groups[-1][0] == c.group:
            groups[-1][1] += 1
        else:
            groups.append([c.group, 1])
    head1 = "".join(f'<th colspan="{n}">{html.escape(g)}</th>' for g, n in groups)
    head2 = "".join(f"<th>{html.escape(c.header)}</th>" for c in table.columns)
    rows = []
    for r, label in enumerate(table.rows):
        cells = []
        for c in range(len(table.columns)):
            text = html.escape(cell_text(table, r, c))
            if math.isnan(table.values[r, c]):
                cells.append(f'<td class="missing">{text}</td>')
            else:
                cls = f' class="r{ranks[r, c]}"' if 1 <= ranks[r, c] <= 3 else ""
                cells.append(f"<td{cls}>{text}</td>")
        tr = ' class="reported"' if table.reported[r] else ""
        rows.append(f"<tr{tr}><td>{html.escape(label)}</td>{''.join(cells)}</tr>")
    foot = "".join(f"<p><small>{html.escape(n)}</small></p>" for n in table.footnotes)
    return f"<table><tr><th></th>{head1}</tr><tr><th></th>{head2}</tr>{''.join(rows)}</table>{foot}"


def paper_check_html(result: pd.DataFrame) -> str:
    """The reproduction check (bench.report.paper_check.check) as a table: one row per scene or dataset
    average and metric, not-comparable metrics sharing a reason on one row, as ``bench check-paper`` prints."""
    from bench.report.paper_check import DEFAULT_TOLERANCES, TEXT_HEADER, merged, text_rows, tolerance_text

    head = "".join(f"<th>{html.escape(h)}</th>" for h in TEXT_HEADER)
    rows = []
    for cells, verdict in zip(text_rows(result), merged(result).verdict):
        tds = "".join(f"<td>{html.escape(c)}</td>" for c in cells)
        rows.append(f'<tr class="{verdict.replace(" ", "-")}">{tds}</tr>')
    note = (f"<p><small>Each finished scene and dataset average against the published row of the same method, "
            f"dataset, protocol, evaluation mode and metric (results/published/); tolerance: "
            f"{html.escape(tolerance_text(DEFAULT_TOLERANCES))}. <code>bench check-paper</code> prints the same."
            "</small></p>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>{note}"


def provenance_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Distinct code/machine combinations with their run counts."""
    if df.empty:
        return df
    cols = ["git_commit", "git_dirty", "bench_version", "torch", "gsplat", "device", "protocol", "lpips_input"]
    runs = df.drop_duplicates("run_id")[cols + ["run_id"]].astype(str)
    return runs.groupby(cols).size().reset_index(name="runs")


def write_report(path: Path, sweep_dir: Path, df: pd.DataFrame, tables: list[Table], figures: list[Path],
                 notes: list[str], rank_reported: bool = False, reading: str = "",
                 paper_check: pd.DataFrame | None = None, videos: list[Path] = ()) -> Path:
    """Write the single-file report; every PNG in ``figures`` and every MP4 in ``videos`` is embedded.
    ``reading``: how to read the ablation's differences and intervals (bench.report.stats.interval_note),
    shown above the tables.
    ``paper_check``: bench.report.paper_check.check, shown after the tables (none: no section)."""
    from jinja2 import Environment

    env = Environment(autoescape=True)
    figs = [{"name": p.name, "stem": p.stem, "data": base64.b64encode(Path(p).read_bytes()).decode()}
            for p in figures if Path(p).suffix == ".png" and Path(p).is_file()]
    clips = [{"name": p.name, "stem": p.stem, "data": base64.b64encode(Path(p).read_bytes()).decode()}
             for p in videos if Path(p).is_file()]
    page = env.from_string(TEMPLATE).render(
        title=f"dydeblur-bench report: {Path(sweep_dir).name}",
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), sweep_dir=str(sweep_dir),
        n_runs=df.run_id.nunique() if not df.empty else 0,
        n_variants=df.variant.nunique() if not df.empty else 0,
        n_scenes=df[["dataset", "scene"]].drop_duplicates().shape[0] if not df.empty else 0,
        rank_note=" (here they are, --rank-reported)" if rank_reported else "",
        notes=notes, reading=reading, provenance=provenance_summary(df).to_dict("records") if not df.empty else [],
        tables=[{"name": t.name, "caption": t.caption, "html": _markup(table_html(t, rank_reported))} for t in tables],
        paper_check=_markup(paper_check_html(paper_check)) if paper_check is not None else "",
        figures=figs, videos=clips)
    write_text(path, page)
    return path


def _markup(text: str):
    from markupsafe import Markup

    return Markup(text)
