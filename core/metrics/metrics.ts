import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry, type Metric } from "prom-client";
import { StrataError } from "../errors.js";
import { registerCoreMetrics, type CoreMetricSources } from "./core-metrics.js";
import type { CoreSnapshot } from "./state.js";
import type { HeadMetrics, Labels, Metrics, Reading } from "./types.js";

const NAME = /^strata_[a-z0-9_]+$/;

/** One gateway's metrics (see Metrics). `processMetrics` adds prom-client's RSS, heap, event-loop lag, … */
export class MetricsRegistry implements Metrics {
  readonly registry = new Registry();
  private headMetrics: HeadMetrics | undefined;
  private sources: CoreMetricSources | undefined;

  constructor(opts: { processMetrics?: boolean; defaultLabels?: Labels } = {}) {
    if (opts.defaultLabels) this.registry.setDefaultLabels(opts.defaultLabels);
    // Event-loop lag comes from perf_hooks.monitorEventLoopDelay (sampled every 10 ms, no timer of its own).
    if (opts.processMetrics ?? true) {
      collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 10 });
      // Gauges named *_total break Prometheus' naming rules (promtool rejects them); their per-type siblings stay.
      for (const name of ["nodejs_active_handles_total", "nodejs_active_requests_total", "nodejs_active_resources_total"]) this.registry.removeSingleMetric(name);
    }
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  counter<L extends string = never>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
    checkName(name, "counter");
    return this.add(name, () => new Counter<L>({ name, help, labelNames, registers: [] }));
  }

  gauge<L extends string = never>(name: string, help: string, labelNames: readonly L[] = []): Gauge<L> {
    checkName(name, "gauge");
    return this.add(name, () => new Gauge<L>({ name, help, labelNames, registers: [] }));
  }

  histogram<L extends string = never>(name: string, help: string, labelNames: readonly L[] = [], buckets?: readonly number[]): Histogram<L> {
    checkName(name, "histogram");
    return this.add(name, () => new Histogram<L>({ name, help, labelNames, registers: [], ...(buckets ? { buckets: [...buckets] } : {}) }));
  }

  gaugeFn(name: string, help: string, labelNames: readonly string[], read: () => Reading): void {
    checkName(name, "gauge");
    this.add(name, () => new Gauge({
      name, help, labelNames, registers: [],
      collect() {
        this.reset();
        apply(read(), (labels, v) => this.set(labels, v));
      },
    }));
  }

  counterFn(name: string, help: string, labelNames: readonly string[], read: () => Reading): void {
    checkName(name, "counter");
    this.add(name, () => new Counter({
      name, help, labelNames, registers: [],
      collect() {
        // A counter has no set(): start from zero and add the current total; the stats it reads only grow.
        this.reset();
        apply(read(), (labels, v) => this.inc(labels, Math.max(0, v)));
      },
    }));
  }

  heads(): HeadMetrics {
    this.headMetrics ??= {
      messagesIn: this.counter("strata_head_messages_in_total", "Messages accepted from devices, per head", ["head"]),
      messagesOut: this.counter("strata_head_messages_out_total", "Messages delivered to devices, per head", ["head"]),
      bytesIn: this.counter("strata_head_bytes_in_total", "Message body bytes accepted from devices, per head", ["head"]),
      bytesOut: this.counter("strata_head_bytes_out_total", "Message body bytes delivered to devices, per head", ["head"]),
      authFailures: this.counter("strata_head_auth_failures_total", "Refused credentials, per head and reason", ["head", "reason"]),
    };
    return this.headMetrics;
  }

  /** Registers core's collectors (once, by the composition root) and keeps the sources for core(). */
  attachCore(sources: CoreMetricSources): void {
    if (this.sources) throw new StrataError("STRATA_METRICS_DUPLICATE", "core metrics are already attached to this registry; attachCore() runs once per gateway");
    this.sources = sources;
    registerCoreMetrics(this, sources);
  }

  core(): CoreSnapshot | undefined {
    const s = this.sources;
    if (!s) return undefined;
    const upstream = s.upstream?.state();
    return { deviceId: s.deviceId, isRoot: s.isRoot, hub: s.hub.stats(), store: s.store.stats(), listeners: s.listeners.all(), ...(upstream ? { upstream } : {}) };
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  private add<M extends Metric>(name: string, make: () => M): M {
    if (this.registry.getSingleMetric(name)) {
      throw new StrataError("STRATA_METRICS_DUPLICATE", `metric ${name} is already registered on this gateway; register each metric once (keep the instrument you got the first time)`);
    }
    const metric = make();
    this.registry.registerMetric(metric);
    return metric;
  }
}

function checkName(name: string, kind: "counter" | "gauge" | "histogram"): void {
  if (!NAME.test(name)) {
    throw new StrataError("STRATA_METRICS_NAME", `metric name ${JSON.stringify(name)} must match ${NAME.source}: prefix it with strata_ and use lower-case letters, digits and _`);
  }
  if (kind === "counter" && !name.endsWith("_total")) {
    throw new StrataError("STRATA_METRICS_NAME", `counter ${name} must end in _total (Prometheus convention); rename it to ${name}_total`);
  }
}

function apply(reading: Reading, set: (labels: Labels, v: number) => void): void {
  if (typeof reading === "number") {
    if (Number.isFinite(reading)) set({}, reading);
    return;
  }
  for (const [labels, v] of reading) if (Number.isFinite(v)) set(labels, v);
}
