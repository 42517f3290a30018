"""The benchmark's figures as PNG (matplotlib, Agg backend) for the README."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def draw(result: dict, out: Path) -> list[Path]:
    paths = []
    c, w = result["creation"], result["whole_system"]
    shown = [c[n]["rounds"][c[n]["shown"]] for n in ("1", "2")]
    whole = w["rounds"][w["shown"]]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.8))
    groups = ["1 instance", "2 instances", "whole system\n(receipts emailed)"]
    bars = {
        "pgbench, same SQL (database ceiling)": (
            [r["pgbench"]["tps"] for r in shown] + [0],
            "#999999",
        ),
        "aiohttp + asyncpg alone (stack floor)": (
            [r["floor"]["rps"] for r in shown] + [whole["floor"]["rps"]],
            "#e67e22",
        ),
        "tickets API": ([r["api"]["rps"] for r in shown] + [whole["whole"]["rps"]], "#3b75af"),
    }
    x = range(len(groups))
    for offset, (label, (values, color)) in zip((-0.27, 0, 0.27), bars.items(), strict=True):
        drawn = left.bar([i + offset for i in x], values, width=0.27, label=label, color=color)
        for bar, value in zip(drawn, values, strict=True):
            if value:
                left.annotate(f"{value:.0f}", (bar.get_x() + bar.get_width() / 2, value),
                              ha="center", va="bottom", fontsize="small")  # fmt: skip
    left.set_xticks(list(x), groups)
    left.set_ylabel("tickets per second (median round)")
    left.set_title(f"Ticket creation, {c['connections']} connections")
    left.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, fontsize="small")
    ratios = [[r["api"]["ratio"] for r in c[n]["rounds"]] for n in ("1", "2")]
    ratios.append([r["whole"]["ratio"] for r in w["rounds"]])
    for i, values in enumerate(ratios):
        right.plot([i] * len(values), values, "o", color="#3b75af", alpha=0.7)
        right.plot([i], [sorted(values)[len(values) // 2]], "_", color="#1f4e79", ms=30, mew=2)
    right.axhline(0.5, color="#c0392b", ls="--", lw=1, label="target 0.5 (one instance)")
    right.set_xticks(list(x), groups)
    right.set_xlim(-0.5, 2.5)
    right.set_ylim(0, 1)
    right.set_ylabel("API / stack floor of the same round")
    right.set_title("Ratio in each round (bar: median)")
    right.legend()
    fig.tight_layout()
    paths.append(out / "creation.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4))
    for n in result["notification"].values():
        values = n["e2e_ms"]
        if values:
            ys = [(i + 1) / len(values) * 100 for i in range(len(values))]
            ax.plot(
                values, ys, label=f"{n['rate']:.0f} replies/s (p99 {n['e2e']['p99_ms']:.0f} ms)"
            )
    ax.axvline(100, color="#c0392b", ls="--", lw=1, label="target p99: 100 ms")
    ax.set_xscale("log")
    ax.set_xlabel("reply request -> email accepted by the SMTP sink (ms, log scale)")
    ax.set_ylabel("% of emails")
    ax.set_title("End-to-end notification latency (CDF)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    paths.append(out / "notification.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)

    if "reads" in result:
        cases = result["reads"]["results"]
        fig, ax = plt.subplots(figsize=(9, 4))
        names = [r["case"].replace(", ", ",\n").replace(" (", "\n(") for r in cases]
        x = range(len(cases))
        for offset, key, label, color in (
            (-0.3, "server_p50_ms", "API p50", "#3b75af"),
            (-0.1, "server_p99_ms", "API p99", "#e67e22"),
            (0.1, "sql_p50_ms", "SQL p50", "#aaaaaa"),
            (0.3, "sql_p99_ms", "SQL p99", "#666666"),
        ):
            ax.bar([i + offset for i in x], [r[key] for r in cases], width=0.2, label=label,
                   color=color)  # fmt: skip
        ax.axhline(20, color="#c0392b", ls="--", lw=1, label="target p99: 20 ms")
        ax.set_xticks(list(x), names, fontsize=8)
        ax.set_ylabel("ms (server-side)")
        ax.set_title(f"Reads with {result['reads']['tickets']:,} tickets")
        ax.legend(fontsize=8)
        fig.tight_layout()
        paths.append(out / "reads.png")
        fig.savefig(paths[-1], dpi=100)
        plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 3.5))
    mem = result["memory"]["after_load"]
    names = list(mem)
    idle = [result["memory"]["idle"].get(n, {}).get("rss_mb", 0) for n in names]
    ax.bar(names, idle, width=0.25,
           align="edge", label="after start", color="#aaaaaa")  # fmt: skip
    ax.bar(names, [mem[n]["rss_mb"] for n in names], width=-0.25, align="edge",
           label="after the load", color="#3b75af")  # fmt: skip
    ax.axhline(150, color="#c0392b", ls="--", lw=1, label="target: 150 MB")
    ax.set_ylabel("VmRSS (MB)")
    ax.set_title("Resident memory per service process")
    ax.legend(fontsize=8)
    fig.tight_layout()
    paths.append(out / "memory.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)
    return paths
