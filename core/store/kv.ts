import type { ClassicLevel } from "classic-level";
import { StrataError } from "../errors.js";
import type { Kv } from "./types.js";
import type { GroupCommit } from "./group-commit.js";
import { kvKey } from "./codec.js";

/** A namespace of JSON values in the store's db; writes join the store's group commit. */
export class LevelKv<V> implements Kv<V> {
  constructor(
    private readonly db: ClassicLevel<string, Buffer>,
    private readonly commit: GroupCommit,
    private readonly namespace: string,
    private readonly assertOpen: () => void,
  ) {}

  async get(key: string): Promise<V | undefined> {
    this.assertOpen();
    const v = await this.db.get(kvKey(this.namespace, key));
    return v === undefined ? undefined : (JSON.parse(v.toString("utf8")) as V);
  }

  put(key: string, value: V): Promise<void> {
    this.assertOpen();
    const json = JSON.stringify(value);
    if (json === undefined) {
      return Promise.reject(new StrataError("STRATA_STORE_KV_VALUE",
        `kv put of "${key}" in namespace "${this.namespace}": the value is not JSON-serialisable; store null or an object instead`));
    }
    return this.commit.append([{ type: "put", key: kvKey(this.namespace, key), value: Buffer.from(json) }]);
  }

  del(key: string): Promise<void> {
    this.assertOpen();
    return this.commit.append([{ type: "del", key: kvKey(this.namespace, key) }]);
  }

  async *entries(prefix = ""): AsyncIterable<[string, V]> {
    this.assertOpen();
    const start = Buffer.from(kvKey(this.namespace, prefix));
    const strip = Buffer.byteLength(kvKey(this.namespace, ""));
    // 0xff never occurs in UTF-8, so start+0xff bounds exactly the keys that begin with start.
    const end = Buffer.concat([start, Buffer.from([0xff])]);
    for await (const [k, v] of this.db.iterator<Buffer, Buffer>({ gte: start, lt: end, keyEncoding: "buffer", valueEncoding: "buffer" })) {
      yield [k.toString("utf8", strip), JSON.parse(v.toString("utf8")) as V];
    }
  }
}
