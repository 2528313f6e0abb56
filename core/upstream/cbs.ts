// Claims-based security on the parent connection: the child puts its own SAS token on `$cbs`, as the Azure
// device SDK does (shared/reference/spikes.md §3), and renews it before it expires.
import { generate_uuid, type Connection, type EventContext, type Receiver, type Sender } from "rhea";
import { StrataError } from "../errors.js";

export const CBS_ADDRESS = "$cbs";
const CBS_REPLY_TO = "cbs";

export interface PutTokenRequest {
  /** The token's resource as signed (not encoded): `{hub}/devices/{self}`. */
  resource: string;
  /** `SharedAccessSignature sr=…&sig=…&se=…`. */
  token: string;
}

/** One CBS channel (a sender and a receiver on `$cbs`) on an open connection. */
export class CbsChannel {
  private readonly sender: Sender;
  private readonly receiver: Receiver;
  private readonly waiting = new Map<string, (ctx: EventContext) => void>();

  constructor(connection: Connection) {
    this.sender = connection.open_sender({ target: { address: CBS_ADDRESS } });
    this.receiver = connection.open_receiver({ source: { address: CBS_ADDRESS }, target: { address: CBS_REPLY_TO }, credit_window: 10, autoaccept: true });
    this.receiver.on("message", (ctx: EventContext) => {
      const id = ctx.message?.correlation_id;
      const key = id === undefined ? undefined : String(id);
      const resolve = key === undefined ? undefined : this.waiting.get(key);
      if (resolve) {
        this.waiting.delete(key!);
        resolve(ctx);
      }
    });
  }

  /** Sends a put-token and resolves on status 200/202; rejects with the parent's status otherwise. */
  putToken(req: PutTokenRequest, timeoutMs: number): Promise<void> {
    const messageId = String(generate_uuid());
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(messageId);
        reject(new StrataError("STRATA_UPSTREAM_AUTH_TIMEOUT", `the parent did not answer the CBS put-token for ${req.resource} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(messageId, (ctx) => {
        clearTimeout(timer);
        const props = (ctx.message?.application_properties ?? {}) as Record<string, unknown>;
        const status = Number(props["status-code"]);
        if (status === 200 || status === 202) return resolve();
        reject(new StrataError(
          "STRATA_UPSTREAM_AUTH",
          `the parent refused this gateway's token for ${req.resource}: ${Number.isFinite(status) ? status : "no status"} ${String(props["status-description"] ?? "")}`.trim() +
            "; check that this gateway's identity is registered at the parent with the key in [identity] key_file",
        ));
      });
      this.sender.send({
        message_id: messageId,
        to: CBS_ADDRESS,
        reply_to: CBS_REPLY_TO,
        application_properties: {
          operation: "put-token",
          type: "servicebus.windows.net:sastoken",
          name: encodeURIComponent(req.resource),
        },
        body: req.token,
      });
    });
  }

  close(): void {
    for (const [id] of this.waiting) this.waiting.delete(id);
  }
}
