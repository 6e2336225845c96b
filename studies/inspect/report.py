"""A static report of a study: PNGs, a leaderboard CSV and one self-contained index.html.

Works without a browser or network: figures come from matplotlib (Agg) and are embedded in the HTML
as data URIs, so the page can be mailed or attached as a CI artifact.
"""

from __future__ import annotations

import argparse
import base64
import csv
import html
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import FrozenTrial

from hpstudy.storage import mask_url, open_storage, resolve_url
from hpstudy.studies.inspect import plots
from hpstudy.studies.inspect.annotate import is_feasible
from hpstudy.studies.inspect.best import best_trial, ranked_trials

if TYPE_CHECKING:
    from matplotlib.figure import Figure

KEY_ATTRS = ("epochs_run", "wall_time_s", "train_time_s", "peak_memory_predicted_mib",
             "peak_memory_measured_mib", "param_count", "device", "objective_version", "run_dir",
             "fail_reason")
HTML_LEADERBOARD_ROWS = 50


@dataclass(frozen=True)
class Section:
    """One figure of the report.

    Attributes:
        filename: The PNG's name in the output directory.
        title: Heading in the HTML.
        question: What the figure answers.
        skip: Why the figure does not apply to a study (None: it applies).
        draw: Builds the figure.
    """

    filename: str
    title: str
    question: str
    skip: Callable[[optuna.Study], str | None]
    draw: Callable[[optuna.Study], Figure]


@dataclass
class Report:
    """What ``write_report`` wrote.

    Attributes:
        out_dir: The output directory.
        files: Every file written, by name (``index.html``, ``leaderboard.csv``, PNGs).
        skipped: Figure file name -> why it was left out.
    """

    out_dir: Path
    files: dict[str, Path] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------- when a figure applies


def _needs_complete(n: int) -> Callable[[optuna.Study], str | None]:
    def check(study: optuna.Study) -> str | None:
        have = len(plots.complete_trials(study))
        return None if have >= n else f"needs {n} complete trials, the study has {have}"
    return check


def _needs_params(n: int) -> Callable[[optuna.Study], str | None]:
    def check(study: optuna.Study) -> str | None:
        base = _needs_complete(2)(study)
        have = len(plots.searched_params(study))
        return base or (None if have >= n else f"needs {n} searched parameters, the study has {have}")
    return check


def _skip_intermediate(study: optuna.Study) -> str | None:
    has = any(t.intermediate_values for t in study.get_trials(deepcopy=False))
    return None if has else "no trial reported per-epoch values (multi-objective, or pruning off)"


def _skip_memory(study: optuna.Study) -> str | None:
    return None if plots.memory_params(study) else "the study has no memory model (it ran without memory:)"


def _skip_pareto(study: optuna.Study) -> str | None:
    n = len(study.directions)
    if n not in (2, 3):
        return "single-objective study" if n == 1 else f"{n} objectives (the front is drawn for 2 or 3)"
    return _needs_complete(1)(study)


def _skip_confusion(study: optuna.Study) -> str | None:
    return None if plots.confusion_trials(study) else "no complete trial has a confusion_matrix user " \
        "attribute (classification objectives set it)"


def _skip_curves(study: optuna.Study) -> str | None:
    best = plots.best_trial(study)
    return None if best and plots.learning_curve_metric(best) is not None else "the best trial recorded no " \
        "training metrics per epoch (epoch_metrics with train_ values)"


def _skip_time(study: optuna.Study) -> str | None:
    has = any(plots.trial_seconds(t) is not None for t in study.get_trials(deepcopy=False))
    return None if has else "no finished trial"


# --------------------------------------------------------------------------- drawing


def _on_axes(draw: Callable[[optuna.Study, Any], object], width: float = 7.0,
             height: float = 4.5, ncols: int = 1) -> Callable[[optuna.Study], Figure]:
    def build(study: optuna.Study) -> Figure:
        fig, axes = plots._figure(width, height, ncols)
        draw(study, axes)
        fig.tight_layout()
        return fig
    return build


SECTIONS: dict[str, Section] = {
    "importances": Section(
        "importances.png", "Parameter importances",
        "Which parameter matters? PED-ANOVA (what the dashboard shows) beside fANOVA: a parameter high in "
        "both deserves the search budget; one that is low in both can be fixed.",
        _needs_params(1), _on_axes(plots.plot_importances, 11, 4.0, ncols=2)),
    "history": Section(
        "history.png", "Optimisation history",
        "Is the search still improving, or has the best value flattened out (stop, or widen the space)?",
        _needs_complete(1), plots.plot_history),
    "intermediate": Section(
        "intermediate.png", "Intermediate values (pruning)",
        "Did pruning cut the right trials? Pruned curves (orange, ending in a cross) should lie on the bad "
        "side of the complete ones at the epoch where they stop.",
        _skip_intermediate, _on_axes(plots.plot_intermediate)),
    "parallel": Section(
        "parallel_coordinate.png", "Parallel coordinates",
        "Which combinations of values lead to good scores (lines coloured by the objective)?",
        _needs_params(1), plots.plot_parallel),
    "contour": Section(
        "contour.png", "Contour of two parameters",
        "How do two parameters interact (lr x momentum when searched, else the two most important)?",
        _needs_params(2), plots.plot_contour),
    "slice": Section(
        "slice.png", "Slice plots",
        "Where in each parameter's range do the good trials lie: is the optimum at an edge of the range?",
        _needs_params(1), plots.plot_slices),
    "memory_map": Section(
        "memory_map.png", "Memory map: predicted peak over the memory axes, the budget line, the trials",
        "Where does the memory boundary lie? Trials by peak memory (measured or predicted), the budget "
        "line, and the trials that went over it.",
        _skip_memory, _on_axes(plots.plot_memory_map, 7.5, 5.5)),
    "pareto": Section(
        "pareto_front.png", "Pareto front",
        "Which trade-offs between the objectives are available (no trial beats these on every objective)?",
        _skip_pareto, plots.plot_pareto),
    "confusion": Section(
        "confusion_matrix.png", "Confusion matrices: worst, middle and best trial",
        "Which classes does the best model still confuse, and what do bad trials get wrong (everything "
        "predicted as the majority class)?",
        _skip_confusion, plots.plot_confusion),
    "curves": Section(
        "learning_curves.png", "Train vs validation of the best trial",
        "Does the best model overfit: does the validation curve turn away from the training one?",
        _skip_curves, plots.plot_learning_curves),
    "time": Section(
        "time_per_trial.png", "Time per trial",
        "Where did the compute go: do pruned trials end early, do some configurations cost much more?",
        _skip_time, _on_axes(plots.plot_time_per_trial)),
}


# --------------------------------------------------------------------------- leaderboard


def leaderboard_rows(study: optuna.Study) -> list[dict[str, Any]]:
    """One row per trial: rank (feasible complete trials, best first as :mod:`.best` defines it: Pareto
    front, then the metrics in order, then trial number), state, values, params, key user attributes.
    Ranked trials come first."""
    names = plots.metric_names(study)
    trials = study.get_trials(deepcopy=False)
    params = plots.searched_params(study)
    ranked = _ranked(study, trials)
    rank_of = {t.number: i + 1 for i, t in enumerate(ranked)}
    order = ranked + [t for t in trials if t.number not in rank_of]
    splits = split_metrics(names[0], trials)
    rows = []
    for t in order:
        row: dict[str, Any] = {"rank": rank_of.get(t.number, ""), "trial": t.number,
                               "state": t.state.name, "feasible": is_feasible(t)}
        for i, name in enumerate(names):
            row[name] = t.values[i] if t.values is not None else ""
        row.update(_split_columns(t, splits))
        row.update({f"param_{p}": t.params.get(p, "") for p in params})
        row.update({a: t.user_attrs.get(a, "") for a in KEY_ATTRS})
        row["constraints"] = _constraints(t)
        rows.append(row)
    return rows


def split_metrics(metric: str, trials: Sequence[FrozenTrial]) -> tuple[str, ...]:
    """The metrics shown for train, val and test side by side: the loss and the first objective's
    metric, when some trial recorded training or test figures (``train_metrics``/``test_metrics``)."""
    if not any(t.user_attrs.get("train_metrics") or t.user_attrs.get("test_metrics") for t in trials):
        return ()
    return tuple(dict.fromkeys(("loss", metric)))


def _split_columns(trial: FrozenTrial, metrics: Sequence[str]) -> dict[str, Any]:
    if not metrics:
        return {}
    row: dict[str, Any] = {"param_count": trial.user_attrs.get("param_count", "")}
    for name in metrics:
        for split, attr in (("train", "train_metrics"), ("val", "metrics"), ("test", "test_metrics")):
            value = (trial.user_attrs.get(attr) or {}).get(name)
            row[f"{split}_{name}"] = "" if value is None else value
    return row


def _constraints(trial: FrozenTrial) -> str:
    """Named constraints (``memory=12.5``); the legacy list's positional copies only when nothing is named."""
    named = {k: v for k, v in trial.constraints.items() if not k.isdigit()}
    return ";".join(f"{k}={v:g}" for k, v in (named or trial.constraints).items())


def _ranked(study: optuna.Study, trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    # One definition of "best" for the summary, this leaderboard and export_best (see inspect/best.py).
    return [t for _front, t in ranked_trials(study)]


def write_leaderboard(study: optuna.Study, path: Path) -> list[dict[str, Any]]:
    """Write the leaderboard CSV and return its rows."""
    rows = leaderboard_rows(study)
    fields = list(rows[0]) if rows else ["rank", "trial", "state"]
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return rows


# --------------------------------------------------------------------------- the report


def write_report(study: optuna.Study, out_dir: str | Path, *, dpi: int = 100) -> Report:
    """Write the PNGs that apply to ``study``, ``leaderboard.csv`` and a self-contained ``index.html``.

    Args:
        study: The study to report on.
        out_dir: Output directory (created if missing).
        dpi: Resolution of the PNGs.

    Returns:
        What was written and what was skipped, with reasons.
    """
    import matplotlib

    matplotlib.use("Agg")  # no display here, and none needed
    import matplotlib.pyplot as plt

    report = Report(Path(out_dir))
    report.out_dir.mkdir(parents=True, exist_ok=True)
    blocks = []
    for section in SECTIONS.values():
        reason = section.skip(study)
        if reason is None:
            try:
                with matplotlib.rc_context():  # optuna's plots switch the global style to ggplot
                    fig = section.draw(study)
            except (ValueError, RuntimeError) as err:  # e.g. importances on constant values
                reason = f"could not be drawn: {err}"
            else:
                path = report.out_dir / section.filename
                fig.savefig(path, dpi=dpi, bbox_inches="tight")
                plt.close(fig)
                report.files[section.filename] = path
        if reason is not None:
            report.skipped[section.filename] = reason
        blocks.append(_section_html(section, report.files.get(section.filename), reason))
    rows = write_leaderboard(study, report.out_dir / "leaderboard.csv")
    report.files["leaderboard.csv"] = report.out_dir / "leaderboard.csv"
    index = report.out_dir / "index.html"
    index.write_text(_page(study, blocks, rows))
    report.files["index.html"] = index
    return report


def _section_html(section: Section, png: Path | None, reason: str | None) -> str:
    head = f"<h2>{html.escape(section.title)}</h2>\n<p class='q'>{html.escape(section.question)}</p>\n"
    if png is None:
        return head + f"<p class='skip'>Not drawn: {html.escape(reason or '')}</p>\n"
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    return head + (f"<img alt='{html.escape(section.title)}' src='data:image/png;base64,{data}'>\n"
                   f"<p class='file'>{html.escape(png.name)}</p>\n")


_CSS = """body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
img{max-width:100%;border:1px solid #ddd}.q{color:#333;font-style:italic}.skip{color:#888}
.file{color:#888;font-size:small}table{border-collapse:collapse;font-size:small}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}th{background:#f3f3f3}"""


def _page(study: optuna.Study, blocks: list[str], rows: list[dict[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        counts[t.state.name.lower()] = counts.get(t.state.name.lower(), 0) + 1
    directions = ", ".join(f"{n} ({d.name.lower()})" for n, d in
                           zip(plots.metric_names(study), study.directions, strict=False))
    best = best_trial(study)
    best_line = "no feasible complete trial" if best is None else (
        f"trial {best.number}: " + ", ".join(f"{v:.4g}" for v in best.values or [])
        + " with " + ", ".join(f"{k}={_fmt(v)}" for k, v in best.params.items())
        + _test_text(best, plots.metric_names(study)))
    title = html.escape(f"Study report: {study.study_name}")
    summary = (f"<ul><li>objectives: {html.escape(directions)}</li>"
               f"<li>trials: {html.escape(', '.join(f'{k} {v}' for k, v in sorted(counts.items())))}</li>"
               f"<li>best: {html.escape(best_line)}</li></ul>")
    return (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{title}</title>"
            f"<style>{_CSS}</style></head><body>\n<h1>{title}</h1>\n{summary}\n" + "".join(blocks)
            + "<h2>Leaderboard</h2>\n<p class='q'>All trials are in leaderboard.csv; the first "
            f"{HTML_LEADERBOARD_ROWS} are shown.</p>\n" + _table(rows[:HTML_LEADERBOARD_ROWS])
            + "</body></html>\n")


def _test_text(trial: FrozenTrial, names: Sequence[str]) -> str:
    test = {k: v for k, v in (trial.user_attrs.get("test_metrics") or {}).items()
            if (":" not in k or k in names) and isinstance(v, int | float)}
    return "; test split (not used for selection): " + ", ".join(f"{k}={v:.4g}" for k, v in test.items()) \
        if test else ""


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "<p class='skip'>no trials</p>"
    cols = [c for c in rows[0] if c not in ("run_dir", "fail_reason")]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(r[c]))}</td>" for c in cols) + "</tr>\n"
                   for r in rows)
    return f"<table><tr>{head}</tr>\n{body}</table>\n"


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


# --------------------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``scripts/report.py``."""
    parser = argparse.ArgumentParser(prog="report.py", description="Write a static report of a study: "
                                     "PNGs, leaderboard.csv and a self-contained index.html.")
    parser.add_argument("--storage", help="storage URL (default: sqlite:///storage/hpstudy.db)")
    parser.add_argument("--study-name", required=True, help="the study to report on")
    parser.add_argument("--out", required=True, help="output directory")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``scripts/report.py``; returns the exit status."""
    args = build_parser().parse_args(argv)
    url = resolve_url(args.storage)
    try:
        storage = open_storage(url, heartbeat_interval=None, max_retry=None)
        study = optuna.load_study(study_name=args.study_name, storage=storage)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
        print(f"error: no study {args.study_name!r} in {mask_url(url)}; studies there: "
              f"{', '.join(names) or '(none)'}", file=sys.stderr)
        return 2
    report = write_report(study, args.out)
    print(f"wrote {len(report.files)} files to {report.out_dir}; open {report.files['index.html']}")
    for name, reason in report.skipped.items():
        print(f"  skipped {name}: {reason}")
    return 0
