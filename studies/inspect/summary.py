"""What the runner prints: a line per finished trial and a closing table."""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import TrialState
from rich.console import Console
from rich.table import Table

from hpstudy.storage import count_by_state, mask_url
from hpstudy.studies.inspect.best import TIE_BREAK, pareto_set


def trial_line(trial: optuna.trial.FrozenTrial) -> str:
    """One line for a finished trial."""
    state = trial.state.name.lower()
    if trial.state == TrialState.COMPLETE and trial.values is not None:
        value = ", ".join(f"{v:.4g}" for v in trial.values)
    elif trial.state == TrialState.PRUNED:
        steps = trial.intermediate_values
        value = f"at epoch {max(steps) + 1}" if steps else ""
    else:
        value = str(trial.user_attrs.get("fail_reason", ""))[:120]
    params = ", ".join(f"{k}={_fmt(v)}" for k, v in trial.params.items())
    return f"trial {trial.number:>4} {state:<8} {value}  [{params}]"


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def print_summary(console: Console, study: optuna.Study, *, storage_url: str, artifacts: str) -> None:
    """The closing table: best value(s) and parameters, trial counts, where things live."""
    table = Table(title=f"study {study.study_name}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    counts = {s: 0 for s in ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")}
    counts.update({state.name: n for state, n in count_by_state(study).items()})
    table.add_row("trials", ", ".join(f"{n.lower()} {c}" for n, c in counts.items() if c or n != "WAITING"))
    for row in _best_rows(study):
        table.add_row(*row)
    table.add_row("storage", mask_url(storage_url))
    table.add_row("artifacts", artifacts)
    table.add_row("dashboard", f"hpstudy dashboard --storage '{mask_url(storage_url)}'")
    console.print(table)


def _best_rows(study: optuna.Study) -> list[tuple[str, str]]:
    names = study.metric_names or [f"value{i}" for i in range(len(study.directions))]
    front = pareto_set(study)
    if not front:
        return [("best", "no feasible complete trial yet")]
    rows = []
    for t in front[:5]:
        values = ", ".join(f"{n}={v:.4g}" for n, v in zip(names, t.values or [], strict=False))
        rows.append((f"best (trial {t.number})", values))
        rows.append(("  params", ", ".join(f"{k}={_fmt(v)}" for k, v in t.params.items())))
        test = {k: v for k, v in (t.user_attrs.get("test_metrics") or {}).items()
                if k in (*names, "loss") and isinstance(v, int | float)}
        if test:
            rows.append(("  test split", ", ".join(f"{k}={v:.4g}" for k, v in test.items())
                         + " (not used for selection)"))
    if len(front) > 5:
        rows.append(("", f"... {len(front) - 5} more Pareto-optimal trials"))
    if len(study.directions) > 1:
        rows.append(("  order", TIE_BREAK))
    return rows
