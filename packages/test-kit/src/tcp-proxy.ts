// A loopback TCP forwarder that tests stop and restart, so a real PostgreSQL server can "go down"
// for one store (its port refuses connections, open connections drop) and come back on the same
// port, without touching the server that other tests share.
import { createServer, connect, type Server, type Socket } from 'node:net';

export class TcpProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private boundPort = 0;
  /** Bytes the target sent back through the proxy (for PostgreSQL: what the client read from the store). */
  bytesFromTarget = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  /** The port it listens on (stable across stop/start once started). */
  get port(): number {
    return this.boundPort;
  }

  get running(): boolean {
    return this.server !== undefined;
  }

  async start(): Promise<void> {
    if (this.server) return;
    const server = createServer((client) => {
      const upstream = connect(this.targetPort, this.targetHost);
      this.track(client);
      this.track(upstream);
      const end = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on('error', end).on('close', end);
      upstream.on('error', end).on('close', end);
      upstream.on('data', (b: Buffer) => {
        this.bytesFromTarget += b.length;
      });
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((res, rej) => {
      server.once('error', rej);
      server.listen(this.boundPort, '127.0.0.1', () => {
        server.off('error', rej);
        res();
      });
    });
    const addr = server.address();
    if (addr && typeof addr === 'object') this.boundPort = addr.port;
    this.server = server;
  }

  /** Refuses new connections and cuts the open ones. */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise<void>((res) => server.close(() => res()));
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await closed;
  }

  private track(s: Socket): void {
    this.sockets.add(s);
    s.on('close', () => this.sockets.delete(s));
  }
}
