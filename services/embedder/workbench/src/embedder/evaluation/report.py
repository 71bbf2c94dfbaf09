"""docs/evaluation.md from the results JSON: tables, verdict with CIs, command, machine."""

from __future__ import annotations

from typing import Any

SET_TITLES = {
    "test": "Test split (GAN never saw these images), per-catalogue indexes",
    "test_unseen_titles": "Product-disjoint: test queries whose title never occurs in train",
    "validation": "Validation (20 % of TRAIN; used to choose the improved head)",
    "all": "Whole catalogue as queries (a catalogue the GAN never saw)",
}


def _ci(r: dict, key: str) -> str:
    low, high = r[f"{key}_ci95"]
    return f"{r[key]:.3f} [{low:.3f}, {high:.3f}]"


def set_table(results: dict[str, Any], set_name: str) -> list[str]:
    rows = [(n, r) for n, r in results.items() if set_name in r["sets"]]
    rows.sort(key=lambda x: -x[1]["sets"][set_name]["p@5"])
    cats = sorted({c for _, r in rows for c in r["sets"][set_name]["per_catalogue"]})
    head = ["model", "dim", "p@1", "p@5 [95 % CI]", "p@10", "mAP@10", "p@5 excl. same title"]
    head += [f"p@5 {c}" for c in cats]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in rows:
        s = r["sets"][set_name]
        nt = s.get("excluding_same_title", {})
        cells = [
            f"`{name}`",
            str(r["dimension"]),
            f"{s['p@1']:.3f}",
            _ci(s, "p@5"),
            f"{s['p@10']:.3f}",
            f"{s['map@10']:.3f}",
            f"{nt['p@5']:.3f}" if nt else "-",
        ]
        cells += [
            f"{s['per_catalogue'][c]['p@5']:.3f}" if c in s["per_catalogue"] else "-" for c in cats
        ]
        lines.append("| " + " | ".join(cells) + " |")
    queries = rows[0][1]["sets"][set_name]["queries"] if rows else 0
    return [f"### {SET_TITLES.get(set_name, set_name)} ({queries} queries)", "", *lines, ""]


def latency_table(results: dict[str, Any]) -> list[str]:
    lines = [
        "| model | batch-1 p50 ms | batch-1 p95 ms | batch-32 images/s | embed catalogue s |",
        "|---|---|---|---|---|",
    ]
    for name, r in sorted(
        results.items(), key=lambda x: x[1].get("latency", {}).get("batch1_p50_ms", 0)
    ):
        lat = r.get("latency")
        if not lat:
            continue
        secs = r["embed_seconds"]
        lines.append(
            f"| `{name}` | {lat['batch1_p50_ms']:.1f} | {lat['batch1_p95_ms']:.1f} | "
            f"{lat['batch32_images_per_s']:.0f} | "
            f"{'-' if secs is None else f'{secs:.0f}'} |"
        )
    return lines + [""]


def per_class_table(results: dict[str, Any], set_name: str, models: list[str]) -> list[str]:
    models = [m for m in models if m in results and set_name in results[m]["sets"]]
    if not models:
        return []
    classes = results[models[0]]["sets"][set_name]["per_class"]
    lines = [
        "| class (queries) | " + " | ".join(f"`{m}`" for m in models) + " |",
        "|---|" + "---|" * len(models),
    ]
    for c, info in sorted(classes.items(), key=lambda x: -x[1]["queries"]):
        vals = [results[m]["sets"][set_name]["per_class"].get(c, {}).get("p@5") for m in models]
        lines.append(
            f"| {c} ({info['queries']}) | "
            + " | ".join("-" if v is None else f"{v:.3f}" for v in vals)
            + " |"
        )
    return lines + [""]


def comparison_lines(payload: dict[str, Any], set_name: str) -> list[str]:
    comp = payload["comparisons"]
    if not comp:
        return ["(no reference model evaluated: no paired comparison)", ""]
    ref = comp["reference"]
    lines = [
        f"p@5 difference to `{ref}` on the same queries (paired bootstrap, 95 % CI):",
        "",
        "| model | difference | 95 % CI |",
        "|---|---|---|",
    ]
    rows = [(n, d[set_name]) for n, d in comp["p@5_minus_reference"].items() if set_name in d]
    for name, d in sorted(rows, key=lambda x: -x[1]["mean"]):
        lines.append(
            f"| `{name}` | {d['mean']:+.3f} | [{d['ci95_low']:+.3f}, {d['ci95_high']:+.3f}] |"
        )
    return lines + [""]
