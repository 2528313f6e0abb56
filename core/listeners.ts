/**
 * Where each listener of this gateway ended up (TOKENS.Listeners). Heads report their bound address here
 * so the CLI can print every address and tests can learn the port the kernel chose for `port = 0`.
 */
export interface BoundListener {
  /** "https", "mqtt", "amqp", … */
  name: string;
  address: string;
  port: number;
}

export class Listeners {
  private readonly bound = new Map<string, BoundListener>();

  report(listener: BoundListener): void {
    this.bound.set(listener.name, { ...listener });
  }

  remove(name: string): void {
    this.bound.delete(name);
  }

  get(name: string): BoundListener | undefined {
    return this.bound.get(name);
  }

  all(): BoundListener[] {
    return [...this.bound.values()];
  }
}
