import express, { NextFunction, Request, Response } from 'express';
import { timingSafeEqual } from 'node:crypto';
import { Registry } from 'prom-client';
import type { QuarantineInfo } from '../spool/types';

export interface ApiDeps {
  /** Accepted bearer tokens (from a secret file or the environment, never the YAML). */
  tokens: readonly string[];
  readiness(): Promise<{ ready: boolean; checks: Record<string, boolean> }>;
  status(): Promise<Record<string, unknown>>;
  metrics: Registry;
  quarantine: {
    list(): Promise<QuarantineInfo[]>;
    release(id: string, by: string): Promise<void>;
    purge(id: string, by: string): Promise<void>;
  };
  /** Audit entries about a study: `uid` is a new UID, or an original UID matched by keyed hash. */
  auditForStudy(uid: string): Promise<unknown[]>;
  onUnauthorized(method: string, path: string, peer: string): void;
  /** Export jobs (absent: the /api/exports routes answer 404). */
  exports?: {
    create(body: unknown, by: string): unknown;
    list(): unknown[];
    get(id: string): unknown | undefined;
    cancel(id: string, by: string): unknown | undefined;
    manifest(id: string): unknown | undefined;
  };
  /** STOW-RS receive (`/dicomweb/studies`), behind the same bearer tokens; no body parser before it. */
  dicomweb?: express.Router;
}

export class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

const ID = /^[A-Za-z0-9._-]{1,128}$/;

/** The REST API as an express app (no listen here: the caller owns the server). */
export function createApp(d: ApiDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');

  app.get('/healthz', (_req, res) => void res.json({ status: 'ok' }));
  app.get('/readyz', async (_req, res) => {
    const r = await d.readiness();
    res.status(r.ready ? 200 : 503).json(r);
  });
  app.get('/metrics', async (_req, res) => {
    res.type(d.metrics.contentType).send(await d.metrics.metrics());
  });

  app.use('/api', bearerAuth(d));
  if (d.dicomweb) app.use('/dicomweb', bearerAuth(d), d.dicomweb);
  app.get('/api/status', async (_req, res) => void res.json(await d.status()));
  app.get('/api/quarantine', async (_req, res) => void res.json(await d.quarantine.list()));
  app.post('/api/quarantine/:id/release', async (req, res) => {
    await d.quarantine.release(checkedId(req.params.id), String(res.locals.client));
    res.status(202).json({ released: req.params.id });
  });
  app.delete('/api/quarantine/:id', async (req, res) => {
    await d.quarantine.purge(checkedId(req.params.id), String(res.locals.client));
    res.status(200).json({ purged: req.params.id });
  });
  if (d.exports) mountExports(app, d.exports);
  app.get('/api/audit', async (req, res) => {
    const uid = typeof req.query.studyUid === 'string' ? req.query.studyUid : '';
    if (!/^[0-9.]{1,64}$/.test(uid)) throw new HttpError(400, 'studyUid: a UID is required');
    res.json(await d.auditForStudy(uid));
  });

  app.use((_req, _res, next) => next(new HttpError(404, 'not found')));
  app.use(errorHandler);
  return app;
}

function mountExports(app: express.Express, jobs: NonNullable<ApiDeps['exports']>): void {
  const found = <T>(v: T | undefined): T => {
    if (v === undefined) throw new HttpError(404, 'no such export job');
    return v;
  };
  app.post('/api/exports', express.json({ limit: '8mb' }), (req, res) => {
    try {
      res.status(201).json(jobs.create(req.body, String(res.locals.client)));
    } catch (err) {
      // ExportRequestError: the request names an unknown source/route or breaks the schema.
      if (err instanceof Error && err.name === 'ExportRequestError') throw new HttpError(400, err.message);
      throw err;
    }
  });
  app.get('/api/exports', (_req, res) => void res.json(jobs.list()));
  app.get('/api/exports/:id', (req, res) => void res.json(found(jobs.get(checkedId(req.params.id)))));
  app.get('/api/exports/:id/manifest', (req, res) => void res.json(found(jobs.manifest(checkedId(req.params.id)))));
  app.delete('/api/exports/:id', (req, res) => void res.status(202).json(found(jobs.cancel(checkedId(req.params.id), String(res.locals.client)))));
}

function checkedId(id: string | undefined): string {
  if (!id || !ID.test(id)) throw new HttpError(400, 'invalid id');
  return id;
}

/** Constant-time token check; the client is identified in audit entries by its token index. */
function bearerAuth(d: ApiDeps) {
  const tokens = d.tokens.map((t) => Buffer.from(t));
  return (req: Request, res: Response, next: NextFunction): void => {
    const m = /^Bearer (.+)$/.exec(req.get('authorization') ?? '');
    const given = m ? Buffer.from(m[1]) : null;
    const index = given ? tokens.findIndex((t) => t.length === given.length && timingSafeEqual(t, given)) : -1;
    if (index < 0) {
      d.onUnauthorized(req.method, req.path, req.socket.remoteAddress ?? '');
      res.status(401).set('WWW-Authenticate', 'Bearer').json({ error: 'a valid bearer token is required' });
      return;
    }
    res.locals.client = `token#${index + 1}`;
    next();
  };
}

/** The one place errors become HTTP statuses. */
function errorHandler(err: Error, _req: Request, res: Response, _next: NextFunction): void {
  if ((err as { type?: string }).type === 'entity.parse.failed') {
    res.status(400).json({ error: 'the body is not valid JSON' });
    return;
  }
  if ((err as { type?: string }).type === 'entity.too.large') {
    res.status(413).json({ error: 'the body is too large' });
    return;
  }
  if (err instanceof HttpError) {
    res.status(err.status).json({ error: err.message });
    return;
  }
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') {
    res.status(404).json({ error: 'not found' });
    return;
  }
  res.status(500).json({ error: 'internal error' });
}
