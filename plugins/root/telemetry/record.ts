import { toMessageRecord, type Message, type MessageRecord } from "../../../core/index.js";

/**
 * One line of the telemetry log, and exactly what `strata telemetry tail --json` prints: the log is written
 * in its output shape (core's MessageRecord) so the command can stream lines without re-encoding them.
 * `strataId` is Strata's message id (what `strata trace` takes): the writer drops a message redelivered
 * after a crash (appended, but its ack not yet durable) by it.
 */
export type TelemetryRecord = MessageRecord & { strataId: string };

export function toTelemetryRecord(message: Message): TelemetryRecord {
  return { ...toMessageRecord(message), strataId: message.id };
}
