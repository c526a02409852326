import * as fs from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { log as dimseLog } from 'dcmjs-dimse';
import type { Config } from '../../config/schema';
import { compileAssociationPolicy, normalizePeerAddress } from './association-policy';
import { PduFramer } from './pdu-framer';
import { IngestScp, ScpContext } from './scp';
import type { ExportAttribution, IngestEvent, IngestSink } from './types';

export type { CommitResult, IngestEvent, IngestSink, ReceiveMeta, SpoolWriter } from './types';

export interface DimseServer {
  /** The port really listened on (useful with port 0). */
  port: number;
  /** Stops listening, drops every connection (half-received instances are aborted) and waits for in-flight commits. */
  close(): Promise<void>;
  /** Associations accepted and still open. */
  activeAssociations(): number;
}

/**
 * TCP connections allowed beyond maxAssociations, so that callers over the limit still get a
 * proper A-ASSOCIATE-RJ; past this the kernel-accepted socket is dropped at once by Node.
 */
export const CONNECTION_HEADROOM = 16;

/**
 * The DIMSE C-ECHO / C-STORE SCP of the gateway.
 *
 * dcmjs-dimse's Server is not used: it listens on every interface, never sets TCP_NODELAY, has no
 * association limit and reports listen errors as events. We own the net/tls server, bind to
 * `cfg.host` only, and run one dcmjs-dimse Scp (IngestScp) per connection.
 *
 * Rejects (before listening) when a caller's host entry is invalid, a TLS file cannot be read,
 * or the address cannot be bound.
 */
export async function startDimseServer(
  cfg: Config['dimse'],
  sink: IngestSink,
  onEvent: (e: IngestEvent) => void,
  attribute?: ExportAttribution,
): Promise<DimseServer> {
  const policy = compileAssociationPolicy(cfg);
  quietLibraryLog();
  const tlsOptions = cfg.tls.enabled ? loadTlsOptions(cfg.tls) : undefined;

  const emit = (e: IngestEvent): void => {
    try {
      onEvent(e);
    } catch {
      /* a listener's failure must never reach the network code */
    }
  };
  const sockets = new Set<net.Socket>();
  const scps = new Set<IngestScp>();
  const accepted = new Set<IngestScp>();
  const ctx: ScpContext = {
    cfg,
    policy,
    sink,
    emit,
    activeAssociations: () => accepted.size,
    associationAccepted: (scp) => accepted.add(scp),
    ...(attribute ? { attribute } : {}),
  };

  const onSocket = (socket: net.Socket): void => {
    sockets.add(socket);
    try {
      socket.setNoDelay(true);
      const peer = normalizePeerAddress(socket.remoteAddress);
      const scp = new IngestScp(socket, peer, ctx);
      // After the Scp constructor, which registers dcmjs-dimse's 'data' listener: the framer
      // takes it over, so the library only ever sees whole PDUs of allowed lengths.
      PduFramer.takeOver(socket, cfg.maxPduLength, () => socket.destroy());
      scps.add(scp);
      scp.on('networkError', () => socket.destroy());
      socket.once('close', () => {
        sockets.delete(socket);
        accepted.delete(scp);
        scp.connectionClosed();
        void scp.settled().then(() => scps.delete(scp));
      });
    } catch {
      socket.destroy();
      sockets.delete(socket);
    }
  };

  let server: net.Server;
  if (tlsOptions) {
    const tlsServer = tls.createServer(tlsOptions, onSocket);
    tlsServer.on('tlsClientError', (err: Error & { code?: string }, socket: tls.TLSSocket) => {
      emit({
        type: 'association.rejected', callingAE: '', calledAE: '',
        peer: normalizePeerAddress(socket.remoteAddress),
        reason: `TLS handshake failed: ${err.code ?? err.message}`,
      });
    });
    server = tlsServer;
  } else {
    server = net.createServer(onSocket);
  }
  // Nagle off from the first byte, the TLS handshake included; tracked from accept on, so that
  // close() also ends connections still in their TLS handshake.
  server.on('connection', (raw: net.Socket) => {
    raw.setNoDelay(true);
    sockets.add(raw);
    raw.once('close', () => sockets.delete(raw));
  });
  server.maxConnections = cfg.maxAssociations + CONNECTION_HEADROOM;

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => reject(new Error(`dimse: cannot listen on ${cfg.host}:${cfg.port}: ${err.message}`));
    server.once('error', onError);
    server.listen({ port: cfg.port, host: cfg.host, exclusive: true }, () => {
      server.off('error', onError);
      resolve();
    });
  });
  // After listening, an 'error' (e.g. EMFILE on accept) must not crash the process.
  server.on('error', () => undefined);
  const port = (server.address() as net.AddressInfo).port;

  let closing: Promise<void> | undefined;
  return {
    port,
    activeAssociations: () => accepted.size,
    close() {
      closing ??= (async () => {
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const s of sockets) s.destroy();
        await Promise.allSettled([...scps].map((s) => s.settled()));
        await stopped;
      })();
      return closing;
    },
  };
}

/** dcmjs-dimse logs every PDU at trace level to the console by default; keep stdout for our own output. */
function quietLibraryLog(): void {
  if (dimseLog.getLevel() < dimseLog.levels.WARN) dimseLog.setLevel(dimseLog.levels.WARN);
}

function loadTlsOptions(t: Config['dimse']['tls']): tls.TlsOptions {
  const read = (field: 'certFile' | 'keyFile' | 'caFile'): Buffer | undefined => {
    const file = t[field];
    if (!file) return undefined;
    try {
      return fs.readFileSync(file);
    } catch (err) {
      throw new Error(`dimse.tls.${field}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  };
  const cert = read('certFile');
  const key = read('keyFile');
  if (!cert || !key) throw new Error('dimse.tls: enabled needs certFile and keyFile');
  const ca = read('caFile');
  if (t.requireClientCert && !ca) throw new Error('dimse.tls.requireClientCert needs caFile (the CA that signs client certificates)');
  return {
    cert,
    key,
    ...(ca ? { ca } : {}),
    requestCert: t.requireClientCert,
    rejectUnauthorized: t.requireClientCert,
    minVersion: 'TLSv1.2',
  };
}
