import { toMessageRecord, type Message, type MessageRecord } from "../../../core/index.js";

/**
 * One line of the telemetry log, and exactly what `strata telemetry tail --json` prints: the log is written
 * in its output shape (core's MessageRecord) so the command can stream lines without re-encoding them.
 */
export type TelemetryRecord = MessageRecord;

export function toTelemetryRecord(message: Message): TelemetryRecord {
  return toMessageRecord(message);
}
