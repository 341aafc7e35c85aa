#!/usr/bin/env python3
"""Runs xkbus and its peer systems through the same scenarios, in both CPU
placements, and writes the comparison (issue #7):

  bench/results/latest.json  every figure (median of the rounds, min-max spread)
                             and its ratio to xkbus, with the machine it ran on
  bench/results/latest.md    one table per scenario and placement, and the targets
  bench/results/latency.png  rr p50 latency against message size (gnuplot)

Every system is a program that forks its own process tree and prints one JSON
line (bench/e2e for xkbus, bench/peers for the others). Exit status 2 means
"this scenario is not supported here" and is skipped; any other failure is
recorded and the run goes on. docs/performance.md explains the scenarios.

  python3 bench/compare.py                    # 3 rounds, every system
  python3 bench/compare.py --rounds 5
  python3 bench/compare.py --quick --rounds 1 --only xkbus,afunix
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS_DIR = os.path.join(ROOT, "bench", "results")

# system: (binary under build/bench, extra arguments, scenarios it runs).
# The peers reject scenarios they do not know, so only theirs are asked for.
SYSTEMS = {
    "xkbus": ("bench_e2e", [], {"rr", "ann", "ann-batch", "bindings", "clients"}),
    "afunix": ("bench_peer_afunix", [], {"rr", "ann"}),
    "zmq": ("bench_peer_zmq", [], {"rr", "ann"}),
    "dbus": ("bench_peer_dbus", [], {"rr", "ann"}),
    "shm-floor": ("bench_peer_floor", ["--system", "shm"], {"rr"}),
    "relay-floor": ("bench_peer_floor", ["--system", "relay"], {"rr"}),
}

# 1cpu: the whole process tree on one vCPU (taskset's affinity is inherited),
# stable to a few percent. spread: unpinned, what users get, but every wake-up
# of a process blocked on the other vCPU costs ~25 us there.
PLACEMENTS = {"1cpu": ["taskset", "-c", "0"], "spread": []}

WINDOW = 1024  # ann credit window, the same for every system (ZeroMQ needs ~1024 to stream)
BIG_WINDOW_BYTES = 8 << 20  # but at most this much unacknowledged per listener (64 KiB: 128)
METRICS = ["p50_us", "p99_us", "msgs_per_s", "mb_per_s"]
# What a line says about the run rather than measures: kept, never aggregated.
PARAMETERS = {"size", "listeners", "window", "bindings", "clients", "clients_per_process",
              "iterations", "count", "daemon_rss_before", "daemon_rss_after", "operations",
              "batch"}
RUN_TIMEOUT = 600  # seconds; the programs have their own, shorter, hard limits


def case(key, scenario, args, size=64, listeners=1):
    return {"key": key, "scenario": scenario, "size": size, "listeners": listeners, "args": args}


def cases(quick):
    """Every measured combination; `key` names it in the results."""
    n = (lambda full, short: str(short if quick else full))
    out = []
    for size, full in ((64, 10000), (4096, 5000), (65536, 2000)):
        out.append(case(f"rr {size}", "rr", ["--size", str(size), "--iterations", n(full, 300)],
                        size))
    for scenario in ("ann", "ann-batch"):
        for size, full in ((64, 20000), (65536, 3000)):
            window = min(WINDOW, BIG_WINDOW_BYTES // size)
            for k in (1, 8):
                # A stream 1->1 at 64 B runs at up to ~900k msgs/s: 20,000 messages
                # (40 ms) measured the start-up, not the stream (xkbus's batch went
                # from ~240k to 320-500k msgs/s at 100,000; ZeroMQ barely moved).
                count = full * 5 if (size, k) == (64, 1) else full
                args = ["--size", str(size), "--listeners", str(k), "--count", n(count, 300),
                        "--window", str(window)]
                out.append(case(f"{scenario} {size} 1->{k}", scenario, args, size, k))
    for b in (10, 100000):
        args = ["--bindings", str(b), "--size", "64", "--iterations", n(5000, 300)]
        out.append(case(f"bindings B={b}", "bindings", args))
    args = ["--clients", "1000", "--count", n(200, 50), "--window", str(WINDOW)]
    out.append(case("clients 1000", "clients", args, 64, 1000))
    return out


def log(message):
    print(f"[compare] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- running


def run_once(command):
    """Runs one program; returns ("ok", figures), ("unsupported", None) or ("failed", why)."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT,
                              cwd=ROOT)
    except subprocess.TimeoutExpired:
        return "failed", f"no result within {RUN_TIMEOUT} s"
    except OSError as e:
        return "failed", str(e)
    if done.returncode == 2:
        return "unsupported", None
    tail = done.stderr.strip().splitlines()[-3:]
    if done.returncode != 0:
        return "failed", f"exit {done.returncode}: " + " | ".join(tail)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    try:
        return "ok", json.loads(lines[-1])
    except (IndexError, ValueError):
        return "failed", "no JSON line on stdout: " + " | ".join(tail)


def run_all(args, systems, placements):
    """samples[placement][case key][system] = [figures of each round]."""
    samples = {p: {} for p in placements}
    failures, unsupported = [], set()
    all_cases = [c for c in cases(args.quick) if not args.scenarios or c["scenario"] in args.scenarios]
    for placement in placements:
        for round_no in range(1, args.rounds + 1):
            for c in all_cases:
                for system, binary in systems.items():
                    if c["scenario"] not in SYSTEMS[system][2] or (system, c["key"]) in unsupported:
                        continue
                    command = PLACEMENTS[placement] + [binary] + SYSTEMS[system][1] + \
                        ["--scenario", c["scenario"]] + c["args"]
                    started = time.monotonic()
                    status, result = run_once(command)
                    where = f"{placement} round {round_no}/{args.rounds}: {c['key']:<22} " \
                        f"{system:<12} {time.monotonic() - started:5.1f}s"
                    if status == "unsupported":
                        unsupported.add((system, c["key"]))
                        log(f"{where} not supported, skipped")
                    elif status == "failed":
                        failures.append({"placement": placement, "round": round_no, "case": c["key"],
                                         "system": system, "command": " ".join(command),
                                         "error": result})
                        log(f"{where} FAILED: {result}")
                    else:
                        samples[placement].setdefault(c["key"], {}).setdefault(system, []).append(result)
                        log(f"{where} {summary(result)}")
    return samples, failures, sorted(unsupported)


def summary(result):
    parts = []
    for name, unit in (("p50_us", "us p50"), ("msgs_per_s", "msgs/s"), ("send_p50_us", "us send"),
                       ("bytes_per_client", "B/client")):
        if isinstance(result.get(name), (int, float)) and result[name]:
            parts.append(f"{result[name]:.1f} {unit}")
    return ", ".join(parts)


# ---------------------------------------------------------------- figures


def measured(value):
    """A figure a system really measured (the peers write 0 for 'not measured')."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def aggregate(rounds):
    """Median of the rounds for each numeric figure, with its min-max spread."""
    names = [k for k, v in rounds[0].items()
             if k not in PARAMETERS and (measured(v) or k in METRICS)]
    figure = {"rounds": len(rounds), "spread": {}}
    figure.update({k: v for k, v in rounds[0].items() if k in PARAMETERS})
    for name in names:
        values = [r.get(name) for r in rounds if measured(r.get(name))]
        if not values:
            figure[name] = None
            continue
        figure[name] = round(statistics.median(values), 3)
        figure["spread"][name] = [min(values), max(values)]
    return figure


def ratios(by_system):
    """other/xkbus for every figure both measured."""
    base = by_system.get("xkbus")
    if base is None:
        return {}
    out = {}
    for system, figure in by_system.items():
        if system == "xkbus":
            continue
        out[system] = {name: round(figure[name] / base[name], 3) for name in figure
                       if name not in ("rounds", "spread") and name not in PARAMETERS
                       and measured(figure.get(name))
                       and measured(base.get(name))}
    return out


def build_results(samples):
    figures, all_ratios = {}, {}
    for placement, by_case in samples.items():
        figures[placement], all_ratios[placement] = {}, {}
        for key, by_system in by_case.items():
            figures[placement][key] = {s: aggregate(r) for s, r in by_system.items()}
            all_ratios[placement][key] = ratios(figures[placement][key])
    return figures, all_ratios


def describe_machine():
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    u = platform.uname()
    return {"cores": os.cpu_count(), "cpu_model": model, "kernel": f"{u.system} {u.release}"}


def git_commit():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, cwd=ROOT, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


# ---------------------------------------------------------------- targets


def figure_of(figures, placement, key, system, name):
    value = figures.get(placement, {}).get(key, {}).get(system, {}).get(name)
    return value if measured(value) else None


# Issue 14's targets. (placements, description, case key, metric, the other
# side: a system, a case key of xkbus, or ("case of", (case key, system));
# limit on xkbus/other, True if xkbus must be at most limit times the other)
BOTH = ("1cpu", "spread")
TARGETS = [
    (("spread",), "rr 64 B p50: xkbus <= 0.5x afunix", "rr 64", "p50_us",
     ("system", "afunix"), 0.5, True),
    (("spread",), "rr 64 B p50: xkbus <= 0.33x dbus", "rr 64", "p50_us",
     ("system", "dbus"), 0.33, True),
    (("1cpu",), "rr 64 B p50: xkbus <= 1.0x afunix", "rr 64", "p50_us",
     ("system", "afunix"), 1.0, True),
    (("1cpu",), "rr 64 B p50: xkbus <= 1.0x dbus", "rr 64", "p50_us", ("system", "dbus"), 1.0, True),
    (("1cpu",), "rr 64 B p50: xkbus <= 1.0x zmq", "rr 64", "p50_us", ("system", "zmq"), 1.0, True),
    (BOTH, "rr 64 KiB p50: xkbus <= 1.0x afunix", "rr 65536", "p50_us",
     ("system", "afunix"), 1.0, True),
    (("spread",), "ann 1->1 64 B sync msgs/s: xkbus >= 1.0x afunix", "ann 64 1->1", "msgs_per_s",
     ("system", "afunix"), 1.0, False),
    (("1cpu",), "ann 1->1 64 B sync msgs/s: xkbus >= 0.5x afunix", "ann 64 1->1", "msgs_per_s",
     ("system", "afunix"), 0.5, False),
    (("spread",), "ann-batch 1->1 64 B msgs/s: xkbus >= 1.0x zmq's ann", "ann-batch 64 1->1",
     "msgs_per_s", ("case of", ("ann 64 1->1", "zmq")), 1.0, False),
    (("1cpu",), "ann-batch 1->1 64 B msgs/s: xkbus >= 0.5x zmq's ann", "ann-batch 64 1->1",
     "msgs_per_s", ("case of", ("ann 64 1->1", "zmq")), 0.5, False),
    (BOTH, "bindings: B=100000 send p50 within 2x of B=10", "bindings B=100000", "p50_us",
     ("case", "bindings B=10"), 2, True),
]


def check_target(figures, placement, target):
    _, description, key, metric, (kind, other), limit, at_most = target
    mine = figure_of(figures, placement, key, "xkbus", metric)
    if kind == "system":
        theirs = figure_of(figures, placement, key, other, metric)
    elif kind == "case of":  # another system's figure in another case
        theirs = figure_of(figures, placement, other[0], other[1], metric)
        other = f"{other[1]} {other[0]}"
    else:
        theirs = figure_of(figures, placement, other, "xkbus", metric)
    row = {"placement": placement, "target": description, "limit": round(limit, 3)}
    if mine is None or theirs is None:
        row.update(status="n/a", ratio=None, note="missing: " + ("xkbus" if mine is None else other))
        return row
    ratio = mine / theirs
    met = ratio <= limit if at_most else ratio >= limit
    # How far from the line: the factor by which xkbus beats it or falls short.
    factor = (limit / ratio) if at_most else (ratio / limit)
    row.update(status="PASS" if met else "MISS", ratio=round(ratio, 3),
               note=(f"{factor:.2f}x better than needed" if met else f"short by {1 / factor:.2f}x"))
    return row


def check_targets(figures, placements):
    return [check_target(figures, p, t) for p in placements for t in TARGETS if p in t[0]]


# ---------------------------------------------------------------- per-operation counts

# What does not depend on the machine's speed: context switches, system calls
# and CPU time per operation, counted by perf over the whole process tree on
# one CPU (the method), for xkbus and the broker it is measured against.
COUNT_EVENTS = "context-switches,raw_syscalls:sys_enter,task-clock"
COUNT_CASES = [
    ("rr 64", "rr", ["--size", "64", "--iterations", "5000"], ("xkbus", "afunix")),
    ("ann 64 1->1", "ann", ["--size", "64", "--count", "20000", "--window", str(WINDOW)],
     ("xkbus", "afunix")),
    # A long run: the start-up of four processes is spread thin.
    ("ann-batch 64 1->1", "ann-batch",
     ["--size", "64", "--count", "1000000", "--window", str(WINDOW)], ("xkbus",)),
]
# (case key, figure, at most)
COUNT_TARGETS = [
    ("rr 64", "context_switches", 5), ("rr 64", "syscalls", 12),
    ("ann 64 1->1", "context_switches", 2.5), ("ann 64 1->1", "syscalls", 5),
    ("ann-batch 64 1->1", "syscalls", 0.1), ("ann-batch 64 1->1", "cpu_us", 1.5),
]


def perf_works():
    perf = shutil.which("perf")
    if perf is None:
        return False
    done = subprocess.run([perf, "stat", "-x,", "-e", COUNT_EVENTS, "true"], capture_output=True,
                          text=True)
    return done.returncode == 0 and "<not supported>" not in done.stderr


def parse_perf_csv(text):
    """{event: value} from perf stat -x, output (value,unit,event,...)."""
    counts = {}
    for line in text.splitlines():
        fields = line.split(",")
        if len(fields) < 3:
            continue
        try:
            counts[fields[2]] = float(fields[0])
        except ValueError:
            continue
    return counts


def count_once(binary, scenario, args):
    with tempfile.NamedTemporaryFile(mode="r", suffix=".csv") as out:
        command = ["perf", "stat", "-x,", "-o", out.name, "-e", COUNT_EVENTS, "--",
                   *PLACEMENTS["1cpu"], binary, "--scenario", scenario, *args]
        status, result = run_once(command)
        if status != "ok":
            return None, result or status
        counts = parse_perf_csv(out.read())
    operations = result.get("operations")
    if not measured(operations) or "raw_syscalls:sys_enter" not in counts:
        return None, "no operation count or no perf figures"
    return {"operations": operations,
            "context_switches": round(counts.get("context-switches", 0) / operations, 3),
            "syscalls": round(counts["raw_syscalls:sys_enter"] / operations, 3),
            # task-clock is in milliseconds
            "cpu_us": round(counts.get("task-clock", 0) * 1000 / operations, 3)}, None


def run_counts(systems):
    if not perf_works():
        log("perf cannot count raw_syscalls here (Debian: linux-perf): no per-operation counts")
        return {}, ["perf unavailable"]
    counts, failures = {}, []
    for key, scenario, args, who in COUNT_CASES:
        for system in who:
            if system not in systems:
                continue
            figure, why = count_once(systems[system], scenario, args)
            if figure is None:
                failures.append(f"{key} {system}: {why}")
                log(f"counts: {key:<20} {system:<8} FAILED: {why}")
                continue
            counts.setdefault(key, {})[system] = figure
            log(f"counts: {key:<20} {system:<8} {figure['context_switches']} cs, "
                f"{figure['syscalls']} syscalls, {figure['cpu_us']} us CPU per operation")
    return counts, failures


def check_count_targets(counts):
    rows = []
    for key, figure, limit in COUNT_TARGETS:
        value = counts.get(key, {}).get("xkbus", {}).get(figure)
        row = {"placement": "1cpu", "target": f"{key}: {figure} per operation <= {limit}",
               "limit": limit, "ratio": value}
        if value is None:
            row.update(status="n/a", note="not counted")
        else:
            met = value <= limit
            row.update(status="PASS" if met else "MISS",
                       note=("" if met else f"over by {value / limit:.2f}x"))
        rows.append(row)
    return rows


# ---------------------------------------------------------------- writing


def fmt(value):
    if value is None:
        return "–"
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def cell(figure, ratio_row, name):
    value = figure.get(name)
    if not measured(value):
        return "–"
    ratio = ratio_row.get(name) if ratio_row else None
    return fmt(value) + (f" (×{ratio:.2f})" if ratio else "")


def spread_text(figure, name):
    spread = figure.get("spread", {}).get(name)
    return f"{fmt(spread[0])}–{fmt(spread[1])}" if spread else "–"


def scenario_table(scenario, placement, figures, all_ratios, case_list):
    latency = "send_p50_us" if scenario in ("ann", "ann-batch", "clients") else "p50_us"
    main = "p50_us" if scenario in ("rr", "bindings") else "msgs_per_s"
    lines = [f"### {scenario}, {placement}", "",
             f"| case | system | p50 µs | p99 µs | msgs/s | MB/s | {main} range | rounds |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for c in case_list:
        by_system = figures.get(placement, {}).get(c["key"], {})
        for system in SYSTEMS:
            if system not in by_system:
                continue
            figure = by_system[system]
            ratio_row = all_ratios[placement][c["key"]].get(system)
            p50 = cell(figure, ratio_row, "p50_us") if latency == "p50_us" else \
                cell(figure, ratio_row, "send_p50_us") + " (send)"
            p99 = cell(figure, ratio_row, "p99_us") if latency == "p50_us" else \
                cell(figure, ratio_row, "send_p99_us") + " (send)"
            if latency != "p50_us" and not measured(figure.get("send_p50_us")):
                p50 = p99 = "–"
            lines.append(f"| {c['key']} | {system} | {p50} | {p99} | "
                         f"{cell(figure, ratio_row, 'msgs_per_s')} | {cell(figure, ratio_row, 'mb_per_s')} | "
                         f"{spread_text(figure, main)} | {figure['rounds']} |")
        extra = by_system.get("xkbus", {})
        if "bytes_per_client" in extra:
            lines.append(f"| {c['key']} | xkbus daemon memory | {fmt(extra['bytes_per_client'])} "
                         f"bytes per connected client | | | | | |")
    return lines + [""]


def markdown(results, case_list, placements):
    machine = results["machine"]
    lines = ["# xkbus against its peers", "",
             f"{results['date']}, commit {results.get('commit') or '?'}; {machine['cores']} cores, "
             f"{machine['cpu_model']}, {machine['kernel']}; median of {results['rounds']} round(s)"
             f"{', quick mode' if results['quick'] else ''}.", "",
             "Each figure is followed by its ratio to xkbus (other/xkbus): above 1 means the other "
             "system is slower for latency (µs) and faster for throughput (msgs/s, MB/s). "
             "The range column is the min–max over the rounds. "
             "See docs/performance.md for what each scenario measures.", ""]
    scenarios = []
    for c in case_list:
        if c["scenario"] not in scenarios:
            scenarios.append(c["scenario"])
    for placement in placements:
        lines += [f"## Placement: {placement}", ""]
        for scenario in scenarios:
            mine = [c for c in case_list if c["scenario"] == scenario]
            if any(results["figures"].get(placement, {}).get(c["key"]) for c in mine):
                lines += scenario_table(scenario, placement, results["figures"], results["ratios"], mine)
    if results.get("counts"):
        lines += ["## Per operation, one CPU (perf stat over the whole process tree)", "",
                  "| case | system | context switches | system calls | CPU µs | operations |",
                  "|---|---|---:|---:|---:|---:|"]
        for key, by_system in results["counts"].items():
            for system, c in by_system.items():
                lines.append(f"| {key} | {system} | {c['context_switches']} | {c['syscalls']} | "
                             f"{c['cpu_us']} | {c['operations']:,} |")
        lines.append("")
    lines += ["## Targets", "", "| placement | target | xkbus/other (or the count) | limit | "
              "result | |", "|---|---|---:|---:|---|---|"]
    for t in results["targets"]:
        ratio = "–" if t["ratio"] is None else f"{t['ratio']:.3f}"
        lines.append(f"| {t['placement']} | {t['target']} | {ratio} | {t['limit']:.3f} | "
                     f"{t['status']} | {t['note']} |")
    lines.append("")
    if results["failures"]:
        lines += ["## Failures", ""]
        lines += [f"- {f['placement']} round {f['round']}, {f['case']}, {f['system']}: {f['error']}"
                  for f in results["failures"]]
        lines.append("")
    if results["unsupported"]:
        lines += ["Not supported (skipped): " +
                  ", ".join(f"{s} {k}" for s, k in results["unsupported"]) + ".", ""]
    return "\n".join(lines)


def plot(figures, placements, path):
    """rr p50 against size, one line per system, one panel per placement."""
    gnuplot = shutil.which("gnuplot")
    if gnuplot is None:
        log("gnuplot not found (Debian: gnuplot-nox): no latency.png")
        return False
    with tempfile.TemporaryDirectory() as tmp:
        script = ["set terminal pngcairo size 1400,560 font 'sans,10'", f"set output '{path}'",
                  f"set multiplot layout 1,{len(placements)}", "set logscale x 2", "set logscale y",
                  "set xlabel 'message size (bytes)'", "set ylabel 'rr p50 latency (µs)'",
                  "set key top left", "set grid"]
        for placement in placements:
            plots = []
            for system in SYSTEMS:
                points = sorted((int(key.split()[1]), by_system[system]["p50_us"])
                                for key, by_system in figures.get(placement, {}).items()
                                if key.startswith("rr ") and system in by_system
                                and measured(by_system[system].get("p50_us")))
                if not points:
                    continue
                data = os.path.join(tmp, f"{placement}-{system}.dat")
                with open(data, "w") as f:
                    f.writelines(f"{size} {p50}\n" for size, p50 in points)
                plots.append(f"'{data}' using 1:2 with linespoints title '{system}'")
            script.append(f"set title 'request/reply p50, {placement}'")
            script += (["plot " + ", ".join(plots)] if plots else [
                "set label 1 'no rr figures' at graph 0.5,0.5 center", "unset logscale",
                "set xrange [0:1]", "set yrange [0:1]", "plot -1 notitle", "unset label 1",
                "set autoscale", "set logscale x 2", "set logscale y"])
        script.append("unset multiplot")
        done = subprocess.run([gnuplot], input="\n".join(script) + "\n", text=True,
                              capture_output=True)
    if done.returncode != 0:
        log("gnuplot failed: " + done.stderr.strip())
        return False
    return True


# ---------------------------------------------------------------- main


def parse_args():
    parser = argparse.ArgumentParser(description="Compare xkbus with its peer systems.")
    parser.add_argument("--build-dir", default="build", help="the CMake build directory")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per figure (median reported)")
    parser.add_argument("--quick", action="store_true", help="few iterations: a smoke test")
    parser.add_argument("--only", default="", help="comma-separated systems, e.g. xkbus,afunix")
    parser.add_argument("--scenarios", default="", help="comma-separated scenarios (default all)")
    parser.add_argument("--placements", default="1cpu,spread", help="1cpu, spread or both")
    parser.add_argument("--no-counts", action="store_true",
                        help="skip the per-operation counts (perf stat)")
    args = parser.parse_args()
    args.only = [s for s in args.only.split(",") if s]
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    args.placements = [p for p in args.placements.split(",") if p]
    for name, known in (("--only", SYSTEMS), ("--placements", PLACEMENTS)):
        unknown = [s for s in getattr(args, name[2:]) if s not in known]
        if unknown:
            parser.error(f"{name}: unknown {', '.join(unknown)} (known: {', '.join(known)})")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


def find_systems(args):
    build = args.build_dir if os.path.isabs(args.build_dir) else os.path.join(ROOT, args.build_dir)
    systems = {}
    for system, (binary, _, _) in SYSTEMS.items():
        if args.only and system not in args.only:
            continue
        path = os.path.join(build, "bench", binary)
        if os.access(path, os.X_OK):
            systems[system] = path
        else:
            log(f"{system}: {path} is missing, skipped")
    return systems


def find_placements(args):
    if "1cpu" in args.placements and shutil.which("taskset") is None:
        log("taskset not found (Debian: util-linux): 1cpu placement skipped")
        return [p for p in args.placements if p != "1cpu"]
    return args.placements


def main():
    args = parse_args()
    systems = find_systems(args)
    if "xkbus" not in systems:
        log("bench_e2e is missing: build it first (cmake --build build); ratios need xkbus")
    placements = find_placements(args)
    samples, failures, unsupported = run_all(args, systems, placements)
    figures, all_ratios = build_results(samples)
    counts, count_failures = ({}, []) if args.no_counts else run_counts(systems)
    results = {
        "machine": describe_machine(),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "commit": git_commit(),
        "rounds": args.rounds,
        "quick": args.quick,
        "placements": placements,
        "systems": sorted(systems),
        "figures": figures,
        "ratios": all_ratios,
        "counts": counts,
        "count_failures": count_failures,
        "targets": check_targets(figures, placements) + check_count_targets(counts),
        "failures": failures,
        "unsupported": [list(u) for u in unsupported],
    }
    os.makedirs(RESULTS_DIR, exist_ok=True)
    with open(os.path.join(RESULTS_DIR, "latest.json"), "w") as f:
        json.dump(results, f, indent=2)
        f.write("\n")
    case_list = cases(args.quick)
    with open(os.path.join(RESULTS_DIR, "latest.md"), "w") as f:
        f.write(markdown(results, case_list, placements))
    plot(figures, placements, os.path.join(RESULTS_DIR, "latency.png"))
    log(f"wrote {os.path.relpath(RESULTS_DIR, ROOT)}/latest.json, latest.md, latency.png"
        f" ({len(failures)} failure(s))")
    # xkbus failing is ours to fix; a peer failing (say, dbus-broker cannot
    # start on this machine) is reported in the table and the JSON, not fatal.
    return 1 if any(f["system"] == "xkbus" for f in failures) else 0


if __name__ == "__main__":
    sys.exit(main())
