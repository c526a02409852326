/**
 * A real Orthanc (Debian package `orthanc` + `orthanc-dicomweb`) as a test peer: its own
 * temporary storage and index, HTTP and DICOM ports picked free on loopback, no
 * authentication, remote access refused. Orthanc 1.10 has no bind-address option (it listens
 * on every interface); RemoteAccessAllowed=false makes its HTTP side answer loopback only and
 * its DICOM side only serves the AEs declared in `modalities` (plus C-STORE from anyone, the
 * Orthanc default).
 *
 * Nothing here uses the gateway's code: WADO/QIDO are read with plain fetch.
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

export const ORTHANC_BINARY = '/usr/sbin/Orthanc';
export const DICOMWEB_PLUGIN_CANDIDATES = [
  '/usr/share/orthanc/plugins/libOrthancDicomWeb.so',
  '/usr/lib/orthanc/plugins/libOrthancDicomWeb.so',
];

export function dicomWebPluginPath(): string | undefined {
  return DICOMWEB_PLUGIN_CANDIDATES.find((p) => fs.existsSync(p));
}

/** Orthanc and its DICOMweb plugin are installed (scripts/install-test-deps.sh). */
export function hasOrthanc(): boolean {
  return fs.existsSync(ORTHANC_BINARY) && dicomWebPluginPath() !== undefined;
}

/** A free TCP port on 127.0.0.1 (bind port 0, read it, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export interface OrthancOptions {
  dicomPort?: number;
  httpPort?: number;
  aet?: string;
  /** DicomModalities: name -> [AET, host, port]. */
  modalities?: Record<string, [string, string, number]>;
  /** Extra top-level configuration entries (win over the defaults). */
  config?: Record<string, unknown>;
  /** Milliseconds to wait for GET /system (default 20 s). */
  startTimeoutMs?: number;
}

export interface QidoInstance {
  studyUid: string;
  seriesUid: string;
  sopInstanceUid: string;
  sopClassUid: string;
  /** The DICOM JSON object as Orthanc returned it. */
  json: Record<string, { vr: string; Value?: unknown[] }>;
}

export interface Orthanc {
  httpUrl: string;
  /** DICOMweb root without a trailing slash, e.g. http://127.0.0.1:8042/dicom-web */
  dicomwebUrl: string;
  dicomPort: number;
  aet: string;
  pid: number;
  dir: string;
  /** Graceful stop (SIGTERM, then SIGKILL after 10 s); keeps the storage for restart(). */
  stop(): Promise<void>;
  /** SIGKILL, no clean-up by Orthanc. */
  kill(): Promise<void>;
  /** Start again on the same ports and storage. */
  restart(): Promise<void>;
  /** Stop and delete the temporary folder. */
  dispose(): Promise<void>;
  /** QIDO-RS /instances (every instance Orthanc has). */
  qidoInstances(): Promise<QidoInstance[]>;
  /** WADO-RS retrieve of one instance: the Part 10 bytes Orthanc returns. */
  wadoInstance(study: string, series: string, sop: string): Promise<Buffer>;
  /** The stored file of an instance (REST /instances/{id}/file), found by SOP Instance UID. */
  storedFile(sop: string): Promise<Buffer>;
  /** Orthanc's log so far (stdout + stderr). */
  log(): string;
}

export async function startOrthanc(opts: OrthancOptions = {}): Promise<Orthanc> {
  const plugin = dicomWebPluginPath();
  if (!plugin || !fs.existsSync(ORTHANC_BINARY)) throw new Error('Orthanc or its DICOMweb plugin is missing: run scripts/install-test-deps.sh');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deid-orthanc-'));
  const httpPort = opts.httpPort ?? (await freePort());
  let dicomPort = opts.dicomPort ?? (await freePort());
  while (dicomPort === httpPort) dicomPort = await freePort();
  const aet = opts.aet ?? 'ORTHANC';
  const config = {
    Name: 'deid-gateway-test',
    StorageDirectory: path.join(dir, 'storage'),
    IndexDirectory: path.join(dir, 'index'),
    StorageCompression: false,
    HttpServerEnabled: true,
    HttpPort: httpPort,
    DicomServerEnabled: true,
    DicomPort: dicomPort,
    DicomAet: aet,
    DicomCheckCalledAet: true,
    RemoteAccessAllowed: false,
    AuthenticationEnabled: false,
    SslEnabled: false,
    Plugins: [plugin],
    DicomWeb: { Enable: true, Root: '/dicom-web/', EnableWado: false, Ssl: false, StudiesMetadata: 'Full', SeriesMetadata: 'Full' },
    DicomModalities: Object.fromEntries(Object.entries(opts.modalities ?? {}).map(([k, v]) => [k, v])),
    OverwriteInstances: true,
    SaveJobs: false,
    StableAge: 3600,
    HttpTimeout: 30,
    ConcurrentJobs: 2,
    ...(opts.config ?? {}),
  };
  const configFile = path.join(dir, 'orthanc.json');
  fs.writeFileSync(configFile, JSON.stringify(config, null, 2));
  const logFile = path.join(dir, 'orthanc.log');
  const httpUrl = `http://127.0.0.1:${httpPort}`;
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  const launch = async (): Promise<void> => {
    const out = fs.openSync(logFile, 'a');
    const c = spawn(ORTHANC_BINARY, [configFile], { stdio: ['ignore', out, out], env: { ...process.env, TCP_NODELAY: '1' } });
    fs.closeSync(out);
    child = c;
    exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
    let early: Error | undefined;
    c.once('exit', (code, signal) => {
      early = new Error(`Orthanc exited (code ${code}, signal ${signal}) during start:\n${tail(logFile)}`);
    });
    c.once('error', (err) => { early = err; });
    const deadline = Date.now() + (opts.startTimeoutMs ?? 20_000);
    for (;;) {
      if (early) throw early;
      try {
        const r = await fetch(`${httpUrl}/system`, { signal: AbortSignal.timeout(1000) });
        if (r.ok) {
          await r.arrayBuffer();
          break;
        }
      } catch {
        /* not up yet */
      }
      if (Date.now() > deadline) {
        c.kill('SIGKILL');
        throw new Error(`Orthanc did not answer GET /system within the start timeout:\n${tail(logFile)}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    // Both listeners are up once /system answers (Orthanc starts DICOM before HTTP).
  };

  const stopWith = async (signal: NodeJS.Signals): Promise<void> => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    c.kill(signal);
    const t = setTimeout(() => c.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(t);
  };

  try {
    await launch();
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }

  const o: Orthanc = {
    httpUrl,
    dicomwebUrl: `${httpUrl}/dicom-web`,
    dicomPort,
    aet,
    get pid() { return child?.pid ?? -1; },
    dir,
    stop: () => stopWith('SIGTERM'),
    kill: () => stopWith('SIGKILL'),
    restart: async () => {
      await stopWith('SIGTERM');
      await launch();
    },
    dispose: async () => {
      await stopWith('SIGTERM');
      fs.rmSync(dir, { recursive: true, force: true });
    },
    qidoInstances: async () => {
      const r = await fetch(`${httpUrl}/dicom-web/instances?includefield=00080016`, { headers: { Accept: 'application/dicom+json' } });
      if (r.status === 204) return [];
      if (!r.ok) throw new Error(`QIDO /instances: HTTP ${r.status}`);
      const list = (await r.json()) as QidoInstance['json'][];
      const v = (j: QidoInstance['json'], tag: string): string => String(j[tag]?.Value?.[0] ?? '');
      return list.map((json) => ({
        studyUid: v(json, '0020000D'),
        seriesUid: v(json, '0020000E'),
        sopInstanceUid: v(json, '00080018'),
        sopClassUid: v(json, '00080016'),
        json,
      }));
    },
    wadoInstance: async (study, series, sop) => {
      const r = await fetch(`${httpUrl}/dicom-web/studies/${study}/series/${series}/instances/${sop}`, {
        headers: { Accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' },
      });
      if (!r.ok) throw new Error(`WADO ${sop}: HTTP ${r.status}`);
      const parts = multipartParts(Buffer.from(await r.arrayBuffer()), r.headers.get('content-type') ?? '');
      if (parts.length !== 1) throw new Error(`WADO ${sop}: ${parts.length} parts`);
      return parts[0];
    },
    storedFile: async (sop) => {
      const l = await fetch(`${httpUrl}/tools/find`, { method: 'POST', body: JSON.stringify({ Level: 'Instance', Query: { SOPInstanceUID: sop } }) });
      const ids = (await l.json()) as string[];
      if (ids.length !== 1) throw new Error(`Orthanc has ${ids.length} instances with SOP Instance UID ${sop}`);
      const r = await fetch(`${httpUrl}/instances/${ids[0]}/file`);
      if (!r.ok) throw new Error(`GET /instances/${ids[0]}/file: HTTP ${r.status}`);
      return Buffer.from(await r.arrayBuffer());
    },
    log: () => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : ''),
  };
  return o;
}

function tail(file: string, n = 3000): string {
  try {
    const s = fs.readFileSync(file, 'utf8');
    return s.slice(-n);
  } catch {
    return '(no log)';
  }
}

/** Splits a multipart/related body into its part bodies (headers dropped). */
export function multipartParts(body: Buffer, contentType: string): Buffer[] {
  const m = /boundary="?([^";]+)"?/i.exec(contentType);
  if (!m) throw new Error(`not multipart: ${contentType}`);
  const delim = Buffer.from(`--${m[1]}`, 'latin1');
  const parts: Buffer[] = [];
  let pos = body.indexOf(delim);
  while (pos >= 0) {
    let start = pos + delim.length;
    if (body.subarray(start, start + 2).toString('latin1') === '--') break;
    start = body.indexOf('\r\n\r\n', start);
    if (start < 0) break;
    start += 4;
    const next = body.indexOf(delim, start);
    if (next < 0) break;
    let end = next;
    if (body[end - 2] === 0x0d && body[end - 1] === 0x0a) end -= 2;
    parts.push(body.subarray(start, end));
    pos = next;
  }
  return parts;
}
