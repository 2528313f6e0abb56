import type { DeliveryOutcome, EndpointConsumer, Lease, Logger } from "../../../core/index.js";
import type { TelemetryLogWriter } from "./log-writer.js";
import { toTelemetryRecord } from "./record.js";

/** The sink's name: the root's `$upstream` fans out to the endpoint `sink:telemetryLog`. */
export const TELEMETRY_SINK = "telemetryLog";

/**
 * The telemetry log as a northbound sink: each batch the hub hands over is appended and fsynced before it
 * is reported delivered, so an acked lease is on disk. A failed write is retried by the hub (with backoff).
 */
export class TelemetryLogSink implements EndpointConsumer {
  readonly batchSize = 500;

  constructor(
    private readonly writer: TelemetryLogWriter,
    private readonly log: Logger,
  ) {}

  async deliver(leases: readonly Lease[]): Promise<DeliveryOutcome[]> {
    try {
      await this.writer.append(leases.map((l) => toTelemetryRecord(l.message)));
      return leases.map(() => "delivered" as const);
    } catch (err) {
      this.log.warn({ err, count: leases.length }, "telemetry log append failed, will retry");
      return leases.map(() => "retry" as const);
    }
  }
}
